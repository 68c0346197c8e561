//! `valex verify RUN_DIR`: check a run's inputs against the hashes in its run.json, then rerun
//! its resolved manifest and compare statistics, neuron sets and results.
//! Exit 0 when everything is identical, 1 with a short diff otherwise.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::args::VerifyArgs;
use crate::exit::{CliError, ExitCode};
use crate::registry::builtin_registry;
use crate::write_stdout;

fn read_json(path: &Path) -> Result<Value, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::usage(format!("{}: cannot read: {e}", path.display())))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| CliError::new(ExitCode::Input, anyhow::anyhow!("{}: {e}", path.display())))
}

pub(crate) fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let run_dir = &args.run_dir;
    let run_json = read_json(&run_dir.join("run.json"))?;
    let resolved = run_dir.join("manifest.resolved.toml");
    let base_dir = args
        .base
        .clone()
        .or_else(|| run_json["base_dir"].as_str().map(PathBuf::from))
        .ok_or_else(|| {
            CliError::usage(format!(
                "{}: run.json has no base_dir; pass --base",
                run_dir.display()
            ))
        })?;

    // 1. Inputs.
    let mut problems: Vec<String> = Vec::new();
    let input_problems = valex_runner::check_inputs(&run_json);
    // Manifests are checked through the resolved manifest kept in the run directory: edits
    // to the original files are reported, but the rerun uses what actually ran.
    for p in &input_problems {
        problems.push(format!(
            "input {} {}: {}",
            p.role,
            p.path.display(),
            p.problem
        ));
    }
    let load = |base: &Path| -> Result<valex_manifest::ExperimentPlan, CliError> {
        let mut loaded = valex_manifest::load(&resolved, &valex_manifest::LoadOptions::default())
            .map_err(|e| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}")))?;
        loaded.base_dir = base.to_path_buf();
        valex_manifest::resolve(&loaded, &builtin_registry())
            .map_err(|e| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}")))
    };
    if input_problems.iter().any(|p| p.role == "dataset") {
        let plan = load(&base_dir)?;
        if let Ok(data) = plan.dataset.load() {
            for line in valex_runner::item_changes(&run_json["dataset_items"], &data.items) {
                problems.push(format!("dataset: {line}"));
            }
        }
    }
    if !problems.is_empty() {
        for p in &problems {
            write_stdout(p);
        }
        return Err(CliError::new(
            ExitCode::StageFailed,
            anyhow::anyhow!(
                "{}: {} input problem(s); not rerun",
                run_dir.display(),
                problems.len()
            ),
        ));
    }
    write_stdout(&format!(
        "inputs: {} files unchanged",
        run_json["inputs"].as_array().map_or(0, Vec::len)
    ));

    // 2. Rerun into a scratch folder and compare.
    let plan = load(&base_dir)?;
    let scratch = std::env::temp_dir().join(format!("valex-verify-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let spec = valex_runner::spec_from_plan(plan);
    let opts = valex_runner::RunOptions {
        out: Some(scratch.join("rerun")),
        runs_root: scratch.clone(),
        force: false,
        manifest_files: vec![resolved.clone()],
        resolved_manifest: std::fs::read_to_string(&resolved).unwrap_or_default(),
        base_dir: base_dir.clone(),
        command_line: std::env::args().collect(),
        plugins: Vec::new(),
        statistics: None,
        resume: None,
        interrupt: None,
    };
    let result =
        valex_runner::run(spec, &opts).map_err(|e| CliError::new(ExitCode::from(e.class()), e));
    let diffs = result
        .map(|s| valex_runner::compare_outputs(&run_json, run_dir, &s.run_dir, args.tolerance));
    let _ = std::fs::remove_dir_all(&scratch);
    let diffs = diffs?;
    if diffs.is_empty() {
        write_stdout(&format!(
            "verified: {} reproduces (statistics, neuron sets and results {})",
            run_dir.display(),
            if args.tolerance > 0.0 {
                "within tolerance"
            } else {
                "identical"
            }
        ));
        return Ok(());
    }
    for d in &diffs {
        write_stdout(&format!("{} differs:", d.file));
        for line in &d.details {
            write_stdout(&format!("  {line}"));
        }
    }
    Err(CliError::new(
        ExitCode::StageFailed,
        anyhow::anyhow!(
            "{}: {} output file(s) differ in the rerun",
            run_dir.display(),
            diffs.len()
        ),
    ))
}
