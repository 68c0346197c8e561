//! valex-cli: the `valex` command line.
//!
//! Owns argument parsing (clap), the one tracing subscriber, the wiring of built-in plugins
//! into the registry, and the mapping of errors to documented exit codes
//! (docs/exit-codes.md). Nothing depends on this crate.

mod args;
mod commands;
mod exit;
mod external;
mod logging;
mod registry;

pub use exit::ExitCode;
pub use registry::{builtin_registry, builtin_registry_builder};

use clap::Parser;

/// Runs the CLI and returns the process exit code.
pub fn main_impl() -> i32 {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr.
            let code = if e.use_stderr() {
                ExitCode::Usage
            } else {
                ExitCode::Ok
            };
            let _ = e.print();
            return code as i32;
        }
    };
    logging::init(&cli.log);
    match commands::dispatch(cli.command) {
        Ok(()) => ExitCode::Ok as i32,
        Err(e) => {
            for line in e.lines() {
                write_stderr(&format!("error: {line}"));
            }
            e.code as i32
        }
    }
}

/// Writes one line to stdout (results go to stdout, logs to stderr).
pub(crate) fn write_stdout(s: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
}

fn write_stderr(s: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{s}");
}
