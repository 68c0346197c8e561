//! `valex run`: execute a manifest into a run directory, or continue an incomplete run
//! (`--resume`). Ctrl-C (or SIGTERM) stops the run cleanly after the current record batch,
//! keeps it resumable and exits with code 130; a second Ctrl-C exits at once.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::args::RunArgs;
use crate::commands::validate::load_plan;
use crate::exit::{CliError, ExitCode};
use crate::external::{library_records, load_components, resolve_failure_code};
use crate::write_stdout;

pub(crate) fn run(args: &RunArgs) -> Result<(), CliError> {
    let interrupt = interrupt_flag()?;
    let (spec, opts) = match (&args.resume, &args.manifest) {
        (Some(dir), _) => resume_plan(dir, args.force)?,
        (None, Some(manifest)) => {
            let (loaded, plan, host) = load_plan(manifest, &args.sets, &args.plugins)?;
            let opts = valex_runner::RunOptions {
                out: args.out.clone(),
                runs_root: "runs".into(),
                force: args.force,
                manifest_files: loaded.files.clone(),
                resolved_manifest: loaded.resolved_toml.clone(),
                base_dir: loaded.base_dir.clone(),
                command_line: std::env::args().collect(),
                plugins: library_records(&host),
                statistics: args.statistics.clone(),
                resume: None,
                interrupt: None,
            };
            (valex_runner::spec_from_plan(plan), opts)
        }
        (None, None) => return Err(CliError::usage("a manifest or --resume RUN_DIR is needed")),
    };
    let opts = valex_runner::RunOptions {
        interrupt: Some(interrupt),
        ..opts
    };
    let summary = valex_runner::run(spec, &opts).map_err(|e| {
        let code = if e.is_interrupted() {
            ExitCode::Interrupted
        } else {
            ExitCode::from(e.class())
        };
        CliError::new(code, e)
    })?;
    if !summary.table.is_empty() {
        write_stdout(summary.table.trim_end());
    }
    write_stdout(&format!("run directory: {}", summary.run_dir.display()));
    Ok(())
}

/// The flag the runner polls: the first SIGINT or SIGTERM sets it, a second one (with the
/// flag already set) exits at once with code 130, as shells do.
fn interrupt_flag() -> Result<Arc<AtomicBool>, CliError> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // The conditional shutdown is registered first, so the first signal only sets the
        // flag (handlers run in registration order).
        signal_hook::flag::register_conditional_shutdown(
            sig,
            ExitCode::Interrupted as i32,
            Arc::clone(&flag),
        )
        .and_then(|_| signal_hook::flag::register(sig, Arc::clone(&flag)))
        .map_err(|e| {
            CliError::new(
                ExitCode::StageFailed,
                anyhow::Error::new(e).context("cannot install the Ctrl-C handler"),
            )
        })?;
    }
    Ok(flag)
}

/// The plan and options of an incomplete run: its resolved manifest, base folder, plugin
/// libraries and inputs, all as recorded in its staging folder.
fn resume_plan(
    dir: &Path,
    force: bool,
) -> Result<(valex_runner::RunSpec, valex_runner::RunOptions), CliError> {
    let partial = valex_runner::PartialRun::find(dir)
        .map_err(|e| CliError::new(ExitCode::from(e.class()), e))?;
    let p = &partial.progress;
    let c = load_components(None, &p.plugins)?;
    let manifest = partial.manifest_path();
    let resolved = std::fs::read_to_string(&manifest)
        .map_err(|e| CliError::usage(format!("{}: cannot read: {e}", manifest.display())))?;
    let mut loaded = valex_manifest::load(&manifest, &valex_manifest::LoadOptions::default())
        .map_err(|e| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}")))?;
    loaded.base_dir = p.base_dir.clone();
    let plan = valex_manifest::resolve(&loaded, &c.registry)
        .map_err(|e| CliError::new(resolve_failure_code(&c.host), anyhow::anyhow!("{e}")))?;
    let opts = valex_runner::RunOptions {
        out: Some(partial.final_path.clone()),
        runs_root: "runs".into(),
        force: force || p.force,
        manifest_files: p.manifest_files.clone(),
        resolved_manifest: resolved,
        base_dir: p.base_dir.clone(),
        command_line: std::env::args().collect(),
        plugins: library_records(&c.host),
        statistics: p.statistics.clone(),
        resume: Some(partial.clone()),
        interrupt: None,
    };
    Ok((valex_runner::spec_from_plan(plan), opts))
}
