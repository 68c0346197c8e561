//! The `valex` binary: see valex_cli for everything.
fn main() {
    std::process::exit(valex_cli::main_impl());
}
