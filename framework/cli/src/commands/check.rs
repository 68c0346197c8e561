//! `valex check`: the backend self-checks of a manifest's model on a sample of its dataset,
//! without running the experiment (docs/manifest.md, `[record] self_check`).
//!
//! Prints one line per check (or JSON with `--json`); exit 0 when every check passed or was
//! skipped, 1 when one failed, 2/3/4 for manifest, plugin and input errors as usual.

use valex_runner::check::{CheckOptions, check_spec};

use crate::args::CheckArgs;
use crate::commands::validate::load_plan;
use crate::exit::{CliError, ExitCode};
use crate::write_stdout;

pub(crate) fn check(args: &CheckArgs) -> Result<(), CliError> {
    let (_loaded, plan, _host) = load_plan(&args.manifest, &args.sets, &args.plugins)?;
    let spec = valex_runner::spec_from_plan(plan);
    let mut opts = CheckOptions {
        sample: args.sample,
        ..CheckOptions::default()
    };
    if let Some(t) = spec.record.as_ref().and_then(|r| r.self_check_tolerance) {
        opts.tolerance = t;
    }
    if let Some(t) = args.tolerance {
        if t.is_nan() || t <= 0.0 {
            return Err(CliError::usage(format!(
                "--tolerance must be greater than 0, found {t}"
            )));
        }
        opts.tolerance = t;
    }
    let report =
        check_spec(&spec, opts).map_err(|e| CliError::new(ExitCode::from(e.class()), e))?;
    if args.json {
        write_stdout(
            &serde_json::to_string_pretty(&report.to_json()).expect("json values serialise"),
        );
    } else {
        write_stdout(&format!(
            "self-check of tap {} on {} texts (tolerance {:e}):",
            report.tap, report.sample, report.tolerance
        ));
        for line in report.lines() {
            write_stdout(&format!("  {line}"));
        }
    }
    if report.passed() {
        Ok(())
    } else {
        Err(CliError::new(
            ExitCode::StageFailed,
            anyhow::anyhow!(
                "self-check failed: {}",
                report
                    .lines()
                    .into_iter()
                    .filter(|l| l.contains("FAILED"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ))
    }
}
