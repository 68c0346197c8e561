//! `valex score`: run a scorer on recorded statistics (or the released counts layout) and
//! write a neuron-set file, without loading a model: record once, score many.

use serde_json::{Map, Value, json};
use valex_core::FactoryContext;
use valex_stats_io::SetProvenance;

use crate::args::ScoreArgs;
use crate::exit::{CliError, ExitCode};
use crate::external::{load_components, resolve_failure_code};
use crate::write_stdout;

pub(crate) fn score(args: &ScoreArgs) -> Result<(), CliError> {
    if args.out.exists() && !args.force {
        return Err(CliError::usage(format!(
            "output file {} exists already (use --force to replace it)",
            args.out.display()
        )));
    }
    let params = score_params(&args.sets)?;
    let by = group_by(args.group_by.as_deref())?;
    let components = load_components(None, &args.plugins)?;
    let registry = &components.registry;
    let (info, _) = registry
        .lookup(valex_core::Kind::Scorer, &args.scorer)
        .map_err(|e| CliError::usage(format!("--scorer: {e}")))?;
    let scorer_id = info.id.clone();
    let scorer = registry
        .scorer(&scorer_id, &params, &FactoryContext::default())
        .map_err(|e| {
            CliError::new(
                resolve_failure_code(&components.host),
                anyhow::anyhow!(
                    "--set scorer.{}: {}",
                    e.key.as_deref().unwrap_or("*"),
                    e.message
                ),
            )
        })?;

    let labels: Option<Vec<String>> = (!args.labels.is_empty()).then(|| args.labels.clone());
    let (mut model_sha, mut dataset_sha, mut statistics_sha) = (None, Value::Null, None);
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
        (model_sha, dataset_sha) = SetProvenance::recorded_inputs(&sidecar);
        statistics_sha = Some(h.clone());
        (
            stats,
            json!({"layout": "valex-stats", "statistics_sha256": h, "recorded": sidecar.get("provenance").cloned().unwrap_or(Value::Null)}),
        )
    };
    let labels = labels.unwrap_or_else(|| stats.label_names());
    // `--group-by value`: one scorer run per group of labels, like `[score] group_by`.
    let grouped = by.map(|by| valex_runner::grouped::GroupedScorer::new(scorer.as_ref(), by));
    let scorer: &dyn valex_core::Scorer = match &grouped {
        Some(g) => g,
        None => scorer.as_ref(),
    };
    let out = scorer
        .score(&stats, &labels)
        .map_err(|e| CliError::new(ExitCode::from(e.class), e))?;
    let stability = if args.stability || args.replicates.is_some() {
        let st = valex_runner::stability::selection_stability(
            scorer,
            &stats,
            &labels,
            &out.sets,
            args.replicates,
        )
        .map_err(|e| CliError::new(ExitCode::from(e.class), e))?;
        Some(st)
    } else {
        None
    };
    let provenance = SetProvenance {
        scorer: scorer_id,
        params,
        labels: labels.clone(),
        details: out.details.clone(),
        statistics_sha256: statistics_sha,
        model_sha256: model_sha,
        dataset_sha256: dataset_sha,
        source,
        stability: stability
            .as_deref()
            .map_or(Value::Null, valex_runner::stability::stability_json),
    };
    valex_stats_io::write_neuron_sets(&args.out, &out.sets, &provenance.to_json())
        .map_err(|e| CliError::new(ExitCode::StageFailed, e))?;
    if let Some(p) = &args.export_lape {
        valex_stats_io::export_lape_masks(p, &out.sets)
            .map_err(|e| CliError::new(ExitCode::StageFailed, e))?;
        write_stdout(&format!("wrote {} (LAPE mask layout)", p.display()));
    }
    for (k, (label, set)) in out.sets.iter().enumerate() {
        let stable = stability.as_ref().map_or_else(String::new, |st| {
            let s = st[k].summary();
            format!(
                ", bootstrap Jaccard {:.3} ± {:.3} over {} replicates",
                s["jaccard_mean"].as_f64().unwrap_or(f64::NAN),
                s["jaccard_sd"].as_f64().unwrap_or(f64::NAN),
                s["replicates"]
            )
        });
        write_stdout(&format!("{label}: {} neurons{stable}", set.len()));
    }
    if let Some(o) = out
        .details
        .get("overlaps")
        .and_then(|o| o["intersection"].as_array())
    {
        for (a, row) in o.iter().enumerate() {
            for (b, n) in row.as_array().into_iter().flatten().enumerate() {
                if b > a && n.as_u64().is_some_and(|n| n > 0) {
                    write_stdout(&format!(
                        "overlap {} & {}: {n} neurons",
                        out.sets[a].0, out.sets[b].0
                    ));
                }
            }
        }
    }
    write_stdout(&format!("wrote {}", args.out.display()));
    Ok(())
}

/// Scorer params from `--set scorer.KEY=VALUE` and `--set selection.KEY=VALUE` (the latter is
/// `scorer.selection.KEY`); dotted keys nest (`scorer.selection.k=10`).
fn score_params(sets: &[String]) -> Result<Value, CliError> {
    let mut params = Map::new();
    for s in sets {
        let Some((key, value)) = s.split_once('=') else {
            return Err(CliError::usage(format!(
                "--set {s}: expected scorer.KEY=VALUE or selection.KEY=VALUE"
            )));
        };
        let key = key.trim();
        let path: Vec<&str> = if let Some(k) = key.strip_prefix("scorer.") {
            k.split('.').collect()
        } else if let Some(k) = key.strip_prefix("selection.") {
            std::iter::once("selection").chain(k.split('.')).collect()
        } else {
            return Err(CliError::usage(format!(
                "--set {s}: valex score takes only scorer.KEY=VALUE and selection.KEY=VALUE \
                 settings"
            )));
        };
        if path.iter().any(|p| p.is_empty()) {
            return Err(CliError::usage(format!("--set {s}: empty key segment")));
        }
        let mut table = &mut params;
        for seg in &path[..path.len() - 1] {
            let entry = table
                .entry((*seg).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                return Err(CliError::usage(format!(
                    "--set {s}: {seg} is already set to a value, not a table"
                )));
            }
            table = entry.as_object_mut().expect("checked to be an object");
        }
        table.insert(
            path[path.len() - 1].to_owned(),
            valex_manifest::parse_set_value(value.trim()),
        );
    }
    Ok(Value::Object(params))
}

/// Parses `--group-by`.
fn group_by(name: Option<&str>) -> Result<Option<valex_manifest::GroupBy>, CliError> {
    match name {
        None => Ok(None),
        Some("value") => Ok(Some(valex_manifest::GroupBy::Value)),
        Some(other) => Err(CliError::usage(format!(
            "--group-by: expected one of {}, found {other:?}",
            valex_manifest::GroupBy::NAMES
                .iter()
                .map(|n| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_flags_nest_selection_keys() {
        let p = score_params(&[
            "scorer.level=tokens".to_owned(),
            "selection.rule=top-k".to_owned(),
            "scorer.selection.k=10".to_owned(),
        ])
        .expect("valid");
        assert_eq!(
            p,
            json!({"level": "tokens", "selection": {"rule": "top-k", "k": 10}})
        );
        assert!(score_params(&["model.x=1".to_owned()]).is_err());
        assert!(
            score_params(&["scorer.level=1".to_owned(), "scorer.level.x=2".to_owned()]).is_err()
        );
    }
}
