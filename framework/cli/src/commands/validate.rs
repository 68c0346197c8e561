//! `valex validate`: everything but running.

use std::path::{Path, PathBuf};

use valex_plugin_host::PluginHost;

use crate::args::ValidateArgs;
use crate::exit::{CliError, ExitCode};
use crate::external::{load_components, resolve_failure_code};
use crate::write_stdout;

/// Loads and resolves a manifest with the CLI's environment and `--set` flags, after loading
/// the plugin libraries its `[[plugins]]` and the `--plugin` flags name (exit 3 when one
/// fails to load).
pub(crate) fn load_plan(
    manifest: &Path,
    sets: &[String],
    plugins: &[PathBuf],
) -> Result<
    (
        valex_manifest::LoadedManifest,
        valex_manifest::ExperimentPlan,
        PluginHost,
    ),
    CliError,
> {
    let opts = valex_manifest::LoadOptions {
        env: std::env::vars().collect(),
        sets: sets.to_vec(),
    };
    let usage =
        |e: valex_manifest::ManifestErrors| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}"));
    let refs = valex_manifest::plugin_refs(manifest, &opts).map_err(usage)?;
    let c = load_components(Some((manifest, &refs)), plugins)?;
    match valex_manifest::load_and_resolve(manifest, &opts, &c.registry) {
        Ok((loaded, plan)) => Ok((loaded, plan, c.host)),
        Err(e) => Err(CliError::new(
            resolve_failure_code(&c.host),
            anyhow::anyhow!("{e}"),
        )),
    }
}

pub(crate) fn validate(args: &ValidateArgs) -> Result<(), CliError> {
    let (loaded, plan, _host) = load_plan(&args.manifest, &args.sets, &args.plugins)?;
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
