//! The `valex` binary: see valex_cli for everything.

/// mimalloc instead of glibc malloc: a forward pass frees and reallocates buffers of the same
/// sizes on every op, which glibc hands back to the kernel and faults in again (+45 % tokens/s
/// at the `tiny` bench shape on 2 cores; docs/performance.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(valex_cli::main_impl());
}
