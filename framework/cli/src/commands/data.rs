//! `valex data stats SPEC`: what a dataset holds and what is wrong with it.
//!
//! SPEC is a manifest (its `[dataset]` section is read, with `VALEX_*` and `--set` layers) or
//! `ID:PATH` for one dataset component (`dataset/jsonl:items.jsonl`,
//! `dataset/c-voice:../shared/datasets/c-voice`), whose params are `{ path = PATH }` plus
//! every `--set dataset.params.KEY=VALUE`. The statistics come from
//! `valex_datasets::stats`; this module loads and prints.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use valex_core::{DatasetLoad, FactoryContext, ItemKind, Kind, Language};
use valex_datasets::stats::{DatasetStats, StatsOptions};

use crate::args::{DataArgs, DataCommand, DataStatsArgs};
use crate::exit::{CliError, ExitCode};
use crate::registry::builtin_registry;
use crate::write_stdout;

pub(crate) fn data(args: &DataArgs) -> Result<(), CliError> {
    match &args.command {
        DataCommand::Stats(a) => stats(a),
    }
}

/// `ID:PATH` when SPEC starts with a component id (`dataset/jsonl:`, `jsonl:`) and is not an
/// existing file.
fn split_spec(spec: &str) -> Option<(&str, &str)> {
    let (id, path) = spec.split_once(':')?;
    let id_like = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '/');
    (id_like && !Path::new(spec).exists()).then_some((id, path))
}

/// The dataset's id, what to call it, and its load.
fn load(args: &DataStatsArgs) -> Result<(String, String, DatasetLoad), CliError> {
    let registry = builtin_registry();
    let (id, params, base_dir, name) = if let Some((id, path)) = split_spec(&args.spec) {
        let (info, _) = registry
            .lookup(Kind::Dataset, id)
            .map_err(|e| CliError::usage(format!("{}: {e}", args.spec)))?;
        let mut params = Map::new();
        params.insert("path".into(), json!(path));
        for s in &args.sets {
            let key = s
                .split_once('=')
                .and_then(|(k, v)| Some((k.trim().strip_prefix("dataset.params.")?, v.trim())));
            let Some((key, value)) = key else {
                return Err(CliError::usage(format!(
                    "--set {s}: with ID:PATH, expected dataset.params.KEY=VALUE"
                )));
            };
            params.insert(key.to_owned(), valex_manifest::parse_set_value(value));
        }
        (
            info.id.clone(),
            Value::Object(params),
            PathBuf::new(),
            format!("{} {path}", info.id),
        )
    } else {
        let opts = valex_manifest::LoadOptions {
            env: std::env::vars().collect(),
            sets: args.sets.clone(),
        };
        let loaded = valex_manifest::load(Path::new(&args.spec), &opts)
            .map_err(|e| CliError::new(ExitCode::Usage, anyhow::anyhow!("{e}")))?;
        let d = loaded.manifest.dataset;
        let name = format!("{} (dataset of {})", d.id, args.spec);
        (d.id, d.params, loaded.base_dir, name)
    };
    let cx = FactoryContext { base_dir };
    let dataset = registry.dataset(&id, &params, &cx).map_err(|e| {
        CliError::usage(format!(
            "dataset.params{}: {}",
            e.key.map(|k| format!(".{k}")).unwrap_or_default(),
            e.message
        ))
    })?;
    let load = dataset
        .load()
        .map_err(|e| CliError::new(ExitCode::from(e.class), e))?;
    Ok((id, name, load))
}

fn stats(args: &DataStatsArgs) -> Result<(), CliError> {
    if !(args.near > 0.0 && args.near <= 1.0) {
        return Err(CliError::usage(format!(
            "--near must be in (0, 1], found {}",
            args.near
        )));
    }
    let (id, name, load) = load(args)?;
    let stats = DatasetStats::compute(
        &load.items,
        &StatsOptions {
            near_threshold: args.near,
        },
    );
    if args.json {
        let doc = json!({
            "dataset": id,
            "spec": args.spec,
            "files": load.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "skipped_rows": load.skipped.iter().map(|s| json!({
                "file": s.file.display().to_string(), "location": s.location, "reason": s.reason,
            })).collect::<Vec<_>>(),
            "stats": stats,
        });
        write_stdout(&serde_json::to_string_pretty(&doc).expect("stats serialise to JSON"));
    } else {
        write_stdout(&render(&name, &load, &stats, args.limit));
    }
    let problems = stats.exact_duplicates.len()
        + stats.near_duplicates.len()
        + stats.identical_options.len()
        + stats.parallel.problems.len()
        + load.skipped.len();
    if args.check && problems > 0 {
        return Err(CliError::new(
            ExitCode::StageFailed,
            anyhow::anyhow!("data check failed: {problems} problems (listed above)"),
        ));
    }
    Ok(())
}

fn kind_name(k: ItemKind) -> &'static str {
    match k {
        ItemKind::Activation => "act",
        ItemKind::Evaluation => "eval",
    }
}

/// Prints at most `limit` entries (0 = all) and says how many were left out.
fn listed<T>(out: &mut String, items: &[T], limit: usize, line: impl Fn(&T) -> String) {
    let n = if limit == 0 {
        items.len()
    } else {
        limit.min(items.len())
    };
    for it in &items[..n] {
        out.push_str(&format!("  {}\n", line(it)));
    }
    if n < items.len() {
        out.push_str(&format!(
            "  ... and {} more (--limit 0 lists all)\n",
            items.len() - n
        ));
    }
}

/// The human-readable report.
fn render(name: &str, load: &DatasetLoad, s: &DatasetStats, limit: usize) -> String {
    let mut o = format!(
        "{name}: {} items from {} file{}, {} row{} skipped\n",
        s.items,
        load.files.len(),
        if load.files.len() == 1 { "" } else { "s" },
        load.skipped.len(),
        if load.skipped.len() == 1 { "" } else { "s" },
    );
    listed(&mut o, &load.skipped, limit, |r| r.to_string());

    // Counts: one column per language and kind present.
    let mut cols: Vec<(Language, ItemKind)> = Vec::new();
    for c in &s.counts {
        if !cols.contains(&(c.language, c.kind)) {
            cols.push((c.language, c.kind));
        }
    }
    cols.sort();
    let mut values: Vec<&str> = Vec::new();
    for c in &s.counts {
        if !values.contains(&c.value.as_str()) {
            values.push(&c.value);
        }
    }
    o.push_str(
        "\nitems per value, language and kind (motives: distinct conflict motives per column)\n",
    );
    o.push_str(&format!("{:<20}", "value"));
    for (l, k) in &cols {
        o.push_str(&format!(
            "{:>9}",
            format!("{} {}", l.as_str(), kind_name(*k))
        ));
    }
    o.push_str(&format!("{:>8}  motives\n", "total"));
    let mut col_totals = vec![0usize; cols.len()];
    for v in &values {
        let label = match valex_datasets::core_value(v) {
            Some(cv) => format!("{} {}", cv.zh, cv.en),
            None => (*v).to_owned(),
        };
        // Pad by display width: CJK characters take two columns.
        let width: usize = label
            .chars()
            .map(|c| if c.is_ascii() { 1 } else { 2 })
            .sum();
        o.push_str(&label);
        o.push_str(&" ".repeat(20usize.saturating_sub(width)));
        let mut total = 0;
        for (i, (l, k)) in cols.iter().enumerate() {
            let n = s.count(v, *l, *k);
            col_totals[i] += n;
            total += n;
            o.push_str(&format!("{n:>9}"));
        }
        let motives: Vec<String> = s
            .counts
            .iter()
            .filter(|c| c.value == *v)
            .map(|c| c.motives.to_string())
            .collect();
        o.push_str(&format!("{total:>8}  {}\n", motives.join("/")));
    }
    o.push_str(&format!("{:<20}", "total"));
    for n in &col_totals {
        o.push_str(&format!("{n:>9}"));
    }
    o.push_str(&format!("{:>8}\n", s.items));

    o.push_str("\nlengths (zh: characters, en: words; percentiles by nearest rank)\n");
    o.push_str(&format!(
        "{:<5}{:<12}{:<11}{:>6}{:>6}{:>6}{:>8}{:>8}{:>6}{:>6}\n",
        "lang", "kind", "field", "n", "min", "p10", "median", "mean", "p90", "max"
    ));
    for r in &s.lengths {
        o.push_str(&format!(
            "{:<5}{:<12}{:<11}{:>6}{:>6}{:>6}{:>8}{:>8.1}{:>6}{:>6}\n",
            r.language.as_str(),
            format!("{:?}", r.kind).to_lowercase(),
            r.field,
            r.n,
            r.min,
            r.p10,
            r.median,
            r.mean,
            r.p90,
            r.max
        ));
    }

    o.push_str(&format!(
        "\nduplicate stories within a language (near: Jaccard similarity of shingles >= {:.2}; zh: character bigrams, en: character 4-grams)\n",
        s.near_threshold
    ));
    o.push_str(&format!(
        "exact: {} group{}\n",
        s.exact_duplicates.len(),
        if s.exact_duplicates.len() == 1 {
            ""
        } else {
            "s"
        }
    ));
    listed(&mut o, &s.exact_duplicates, limit, |g| {
        format!("{}: {}", g.language.as_str(), g.ids.join(", "))
    });
    o.push_str(&format!(
        "near: {} pair{}\n",
        s.near_duplicates.len(),
        if s.near_duplicates.len() == 1 {
            ""
        } else {
            "s"
        }
    ));
    listed(&mut o, &s.near_duplicates, limit, |p| {
        format!(
            "{:.2} {} {} / {}",
            p.similarity,
            p.language.as_str(),
            p.a,
            p.b
        )
    });
    o.push_str(&format!(
        "identical options: {} item{}\n",
        s.identical_options.len(),
        if s.identical_options.len() == 1 {
            ""
        } else {
            "s"
        }
    ));
    listed(&mut o, &s.identical_options, limit, String::clone);

    let p = &s.parallel;
    o.push_str(&format!(
        "\ntranslations (parallel_id): {} of {} items linked; {} groups, {} complete, {} with problems\n",
        p.items_with_parallel_id,
        s.items,
        p.groups,
        p.complete,
        p.problems.len()
    ));
    listed(&mut o, &p.problems, limit, |q| {
        format!("{} ({}): {}", q.parallel_id, q.ids.join(", "), q.problem)
    });
    o.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_with_a_component_id_prefix_are_split() {
        assert_eq!(
            split_spec("dataset/jsonl:data/x.jsonl"),
            Some(("dataset/jsonl", "data/x.jsonl"))
        );
        assert_eq!(split_spec("c-voice:/d"), Some(("c-voice", "/d")));
        assert_eq!(split_spec("experiments/x.toml"), None);
        assert_eq!(split_spec("C:/x.toml"), None);
    }
}
