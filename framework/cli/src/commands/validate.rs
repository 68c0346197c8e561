//! `valex validate`: everything but running.

use std::path::Path;

use crate::args::ValidateArgs;
use crate::exit::{CliError, ExitCode};
use crate::registry::builtin_registry;
use crate::write_stdout;

/// Loads and resolves a manifest with the CLI's environment and `--set` flags.
pub(crate) fn load_plan(
    manifest: &Path,
    sets: &[String],
) -> Result<
    (
        valex_manifest::LoadedManifest,
        valex_manifest::ExperimentPlan,
    ),
    CliError,
> {
    let opts = valex_manifest::LoadOptions {
        env: std::env::vars().collect(),
        sets: sets.to_vec(),
    };
    valex_manifest::load_and_resolve(manifest, &opts, &builtin_registry())
        .map_err(|e| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}")))
}

pub(crate) fn validate(args: &ValidateArgs) -> Result<(), CliError> {
    let (loaded, plan) = load_plan(&args.manifest, &args.sets)?;
    if args.print {
        write_stdout(loaded.resolved_toml.trim_end());
    }
    let spec = valex_runner::spec_from_plan(plan);
    let stages: Vec<&str> = spec.records.iter().map(|(role, _)| role.as_str()).collect();
    write_stdout(&format!(
        "ok: {} is valid (experiment {}; {})",
        args.manifest.display(),
        spec.name,
        stages.join(", ")
    ));
    Ok(())
}
