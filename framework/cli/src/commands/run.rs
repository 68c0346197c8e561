//! `valex run`: execute a manifest into a run directory.

use crate::args::RunArgs;
use crate::commands::validate::load_plan;
use crate::exit::{CliError, ExitCode};
use crate::external::library_records;
use crate::write_stdout;

pub(crate) fn run(args: &RunArgs) -> Result<(), CliError> {
    let (loaded, plan, host) = load_plan(&args.manifest, &args.sets, &args.plugins)?;
    let spec = valex_runner::spec_from_plan(plan);
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
    };
    let summary = valex_runner::run(spec, &opts).map_err(|e| {
        let code = ExitCode::from(e.class());
        CliError::new(code, e)
    })?;
    if !summary.table.is_empty() {
        write_stdout(summary.table.trim_end());
    }
    write_stdout(&format!("run directory: {}", summary.run_dir.display()));
    Ok(())
}
