//! `valex record` (optionally one shard of the recording) and `valex merge` (shards into one
//! statistics file). `valex run MANIFEST --stats MERGED` then runs the rest of the pipeline.
//! See docs/cluster.md.

use std::path::Path;

use crate::args::{MergeArgs, RecordArgs};
use crate::commands::validate::load_plan;
use crate::exit::{CliError, ExitCode};
use crate::external::library_records;
use crate::write_stdout;

fn refuse_existing(out: &Path, force: bool) -> Result<(), CliError> {
    let paths = valex_stats_io::stats_paths(out);
    for p in [&paths.tensors, &paths.sidecar] {
        if p.exists() && !force {
            return Err(CliError::usage(format!(
                "{} exists already (use --force to replace it)",
                p.display()
            )));
        }
    }
    Ok(())
}

fn write(
    out: &Path,
    stats: &valex_core::ActivationStats,
    prov: &serde_json::Value,
) -> Result<(), CliError> {
    valex_stats_io::write_stats(out, stats, prov)
        .map_err(|e| CliError::new(ExitCode::StageFailed, e))?;
    let items: u64 = stats.labels.iter().map(|l| l.items).sum();
    write_stdout(&format!(
        "wrote {} ({} labels, {items} items)",
        valex_stats_io::stats_paths(out).tensors.display(),
        stats.labels.len()
    ));
    Ok(())
}

pub(crate) fn record(args: &RecordArgs) -> Result<(), CliError> {
    refuse_existing(&args.out, args.force)?;
    let shard = args
        .shard
        .as_deref()
        .map(valex_runner::Shard::parse)
        .transpose()
        .map_err(|e| CliError::usage(format!("--shard: {e}")))?;
    let (loaded, plan, host) = load_plan(&args.manifest, &args.sets, &args.plugins)?;
    let spec = valex_runner::spec_from_plan(plan);
    let opts = valex_runner::RunOptions {
        manifest_files: loaded.files.clone(),
        resolved_manifest: loaded.resolved_toml.clone(),
        base_dir: loaded.base_dir.clone(),
        command_line: std::env::args().collect(),
        plugins: library_records(&host),
        ..Default::default()
    };
    let (stats, prov) = valex_runner::record_statistics(&spec, &opts, shard)
        .map_err(|e| CliError::new(ExitCode::from(e.class()), e))?;
    write(&args.out, &stats, &prov)
}

pub(crate) fn merge(args: &MergeArgs) -> Result<(), CliError> {
    refuse_existing(&args.out, args.force)?;
    let (stats, prov) = valex_runner::merge_statistics(&args.parts)
        .map_err(|e| CliError::new(ExitCode::from(e.class()), e))?;
    write(&args.out, &stats, &prov)
}
