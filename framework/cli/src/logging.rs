//! The one tracing subscriber: stderr, `VALEX_LOG` in EnvFilter syntax, `-v`/`-q`, and
//! `--log-format json` for unattended runs.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::args::LogArgs;

pub(crate) fn init(args: &LogArgs) {
    let level = match (args.verbose as i8) - (args.quiet as i8) {
        i8::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("VALEX_LOG").unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| valex_runner::progress::LogWriter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal());
    // Progress bars only for people watching: a terminal, text logs, not quieted.
    valex_runner::progress::enable(args.quiet == 0 && args.log_format != "json");
    let _ = if args.log_format == "json" {
        builder.json().try_init()
    } else {
        builder.compact().try_init()
    };
}
