//! `valex score`: run a scorer on recorded statistics (or the released counts layout) and
//! write a neuron-set file, without loading a model: record once, score many.

use serde_json::{Map, Value, json};
use valex_core::{FactoryContext, VALEX_VERSION};

use crate::args::ScoreArgs;
use crate::exit::{CliError, ExitCode};
use crate::registry::builtin_registry;
use crate::write_stdout;

pub(crate) fn score(args: &ScoreArgs) -> Result<(), CliError> {
    if args.out.exists() && !args.force {
        return Err(CliError::usage(format!(
            "output file {} exists already (use --force to replace it)",
            args.out.display()
        )));
    }
    let mut params = Map::new();
    for s in &args.sets {
        let Some((key, value)) = s.split_once('=') else {
            return Err(CliError::usage(format!(
                "--set {s}: expected scorer.KEY=VALUE"
            )));
        };
        let Some(key) = key.trim().strip_prefix("scorer.") else {
            return Err(CliError::usage(format!(
                "--set {s}: valex score takes only scorer.KEY=VALUE settings"
            )));
        };
        params.insert(
            key.to_owned(),
            valex_manifest::parse_set_value(value.trim()),
        );
    }
    let params = Value::Object(params);
    let registry = builtin_registry();
    let (info, _) = registry
        .lookup(valex_core::Kind::Scorer, &args.scorer)
        .map_err(|e| CliError::usage(format!("--scorer: {e}")))?;
    let scorer_id = info.id.clone();
    let scorer = registry
        .scorer(&scorer_id, &params, &FactoryContext::default())
        .map_err(|e| {
            CliError::usage(format!(
                "--set scorer.{}: {}",
                e.key.as_deref().unwrap_or("*"),
                e.message
            ))
        })?;

    let labels: Option<Vec<String>> = (!args.labels.is_empty()).then(|| args.labels.clone());
    let (stats, source) = if let Some(dir) = &args.counts {
        let stats = valex_stats_io::read_released_counts(dir, labels.as_deref())
            .map_err(|e| CliError::new(ExitCode::Input, e))?;
        let mut files = Map::new();
        for f in ["over_zero.safetensors", "counts.json"] {
            let h = valex_stats_io::sha256_file(&dir.join(f))
                .map_err(|e| CliError::new(ExitCode::Input, e))?;
            files.insert(f.to_owned(), json!(h));
        }
        (stats, json!({"layout": "released-counts", "sha256": files}))
    } else {
        let path = args
            .stats
            .as_ref()
            .expect("clap requires --counts or --stats");
        let (stats, sidecar) =
            valex_stats_io::read_stats(path).map_err(|e| CliError::new(ExitCode::Input, e))?;
        let st = valex_stats_io::stats_paths(path).tensors;
        let h = valex_stats_io::sha256_file(&st).map_err(|e| CliError::new(ExitCode::Input, e))?;
        (
            stats,
            json!({"layout": "valex-stats", "statistics_sha256": h, "recorded": sidecar.get("provenance").cloned().unwrap_or(Value::Null)}),
        )
    };
    let labels = labels.unwrap_or_else(|| stats.label_names());
    let out = scorer
        .score(&stats, &labels)
        .map_err(|e| CliError::new(ExitCode::from(e.class), e))?;
    let provenance = json!({
        "scorer": scorer_id,
        "params": params,
        "labels": labels,
        "source": source,
        "details": out.details,
        "valex_version": VALEX_VERSION,
    });
    valex_stats_io::write_neuron_sets(&args.out, &out.sets, &provenance)
        .map_err(|e| CliError::new(ExitCode::StageFailed, e))?;
    for (label, set) in &out.sets {
        write_stdout(&format!("{label}: {} neurons", set.len()));
    }
    write_stdout(&format!("wrote {}", args.out.display()));
    Ok(())
}
