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
    catch_file_size_signal();
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

/// A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills
/// the process without a word. With a handler installed the write fails with EFBIG instead,
/// and the error names the file (exit code 1). See docs/reliability.md.
fn catch_file_size_signal() {
    #[cfg(unix)]
    {
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGXFSZ, seen) {
            tracing::warn!(error = %e, "cannot handle SIGXFSZ; a file-size limit kills valex");
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
