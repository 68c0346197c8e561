//! The record stage: which activation items are recorded under which label, shards of them,
//! the batched statistics pass over the backend (with checkpoints and a progress bar), and the
//! merge of shard statistics.

use std::path::PathBuf;

use serde_json::{Value, json};
use tracing::warn;
use valex_core::{
    ActivationStats, GenerateRequest, Item, ItemKind, Language, ModelBackend, RecordBatch,
};
use valex_manifest::{LabelBy, Positions, RecordConfig as RecordSpec};

use crate::error::RunError;
use crate::resume::Checkpointer;
use crate::spec::{condition_label, label_of, overlaps, position_spans, render_item};

/// Merges shard statistics written by [`record_statistics`]: all parts must come from the same
/// inputs and record settings, and their shards must be exactly `1..=n` of one `n`.
///
/// # Errors
/// Unreadable parts, mismatched provenance, missing or repeated shards.
pub fn merge_statistics(parts: &[PathBuf]) -> Result<(ActivationStats, Value), RunError> {
    let mut merged: Option<(ActivationStats, Value)> = None;
    let mut seen: Vec<usize> = Vec::new();
    let mut count = None;
    for part in parts {
        let (stats, sidecar) = valex_stats_io::read_stats(part)?;
        let prov = sidecar.get("provenance").cloned().unwrap_or(Value::Null);
        let shard = &prov["shard"];
        let (Some(i), Some(n)) = (shard["index"].as_u64(), shard["count"].as_u64()) else {
            return Err(RunError::Config(format!(
                "{}: not a shard (recorded without --shard)",
                part.display()
            )));
        };
        if *count.get_or_insert(n) != n {
            return Err(RunError::Config(format!(
                "{}: shard {i}/{n} does not belong with shards of {}",
                part.display(),
                count.unwrap_or(n)
            )));
        }
        if seen.contains(&(i as usize)) {
            return Err(RunError::Config(format!(
                "{}: shard {i}/{n} given twice",
                part.display()
            )));
        }
        seen.push(i as usize);
        match &mut merged {
            None => merged = Some((stats, prov)),
            Some((acc, first)) => {
                for key in ["provenance", "record"] {
                    if first[key] != prov[key] {
                        return Err(RunError::Config(format!(
                            "{}: {key} differs from the first part's (other inputs or settings)",
                            part.display()
                        )));
                    }
                }
                acc.merge(&stats)
                    .map_err(|e| RunError::Config(format!("{}: {e}", part.display())))?;
            }
        }
    }
    let (stats, mut prov) =
        merged.ok_or_else(|| RunError::Config("merge: no parts given".to_owned()))?;
    let n = count.unwrap_or(0) as usize;
    let missing: Vec<String> = (1..=n)
        .filter(|i| !seen.contains(i))
        .map(|i| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(RunError::Config(format!(
            "merge: shards {} are missing",
            missing.join(", ")
        )));
    }
    prov["shard"] = Value::Null;
    prov["merged_shards"] = json!(n);
    Ok((stats, prov))
}

/// One recorded row: the label index, the key (the row's ordinal within its label), the item
/// and the `[[record.conditions]]` entry whose template renders it (`None`: `record.template`).
pub(crate) type Chosen<'a> = (usize, u64, &'a Item, Option<usize>);

/// The labels of the activation items used, in order of first appearance, and the chosen
/// rows; the key is the row's ordinal within its label, so it is the same whether or not the
/// rows are split into shards. With `label_by = "value-condition"` every item gives one row
/// per record condition, in the conditions' order (labels `<value>/<condition>`).
pub(crate) fn record_items<'a>(
    rec: &RecordSpec,
    items: &'a [Item],
) -> (Vec<String>, Vec<Chosen<'a>>) {
    let mut labels: Vec<String> = Vec::new();
    let mut per_label: Vec<usize> = Vec::new();
    let mut chosen = Vec::new();
    let conditions: Vec<Option<usize>> = if rec.label_by == LabelBy::ValueCondition {
        (0..rec.conditions.len()).map(Some).collect()
    } else {
        vec![None]
    };
    for it in items {
        if it.kind != ItemKind::Activation || !rec.languages.contains(&it.language) {
            continue;
        }
        for &ci in &conditions {
            let label = match ci {
                Some(c) => condition_label(&it.value, &rec.conditions[c].name),
                None => label_of(rec.label_by, &it.value, it.language),
            };
            let li = labels.iter().position(|l| *l == label).unwrap_or_else(|| {
                labels.push(label);
                per_label.push(0);
                labels.len() - 1
            });
            if rec.max_items_per_label == 0 || per_label[li] < rec.max_items_per_label {
                chosen.push((li, per_label[li] as u64, it, ci));
                per_label[li] += 1;
            }
        }
    }
    (labels, chosen)
}

/// The template of a chosen row and its key path in errors.
pub(crate) fn row_template(
    rec: &RecordSpec,
    ci: Option<usize>,
    language: Language,
) -> (&str, String) {
    match ci {
        Some(c) => (
            rec.conditions[c].template.for_language(language),
            format!("record.conditions[{c}].template.{}", language.as_str()),
        ),
        None => (
            rec.template.for_language(language),
            format!("record.template.{}", language.as_str()),
        ),
    }
}

/// A deterministic part of the recording: shard `index` (1-based) of `count` takes the chosen
/// items whose position `p` in the chosen list has `p % count == index - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based shard number.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Parses `i/n` with `1 <= i <= n`.
    ///
    /// # Errors
    /// A message naming the expected form.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("shard \"{s}\" must be i/n with 1 <= i <= n");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

pub(crate) fn record(
    backend: &mut dyn ModelBackend,
    rec: &RecordSpec,
    items: &[Item],
    shard: Option<Shard>,
    seed: u64,
    mut checkpoints: Option<&mut Checkpointer<'_>>,
) -> Result<ActivationStats, RunError> {
    let (labels, mut chosen) = record_items(rec, items);
    if let Some(sh) = shard {
        chosen = chosen
            .into_iter()
            .enumerate()
            .filter(|(p, _)| p % sh.count == sh.index - 1)
            .map(|(_, c)| c)
            .collect();
    }
    if chosen.is_empty() {
        return Err(RunError::Config(format!(
            "record: the dataset has no activation items in languages {:?}",
            rec.languages.iter().map(|l| l.as_str()).collect::<Vec<_>>()
        )));
    }
    let info = backend.info().clone();
    let mut stats = ActivationStats::new(&rec.tap, info.n_layers, info.n_neurons, &labels)
        .with_bootstrap(seed, rec.bootstrap);
    if rec.keep_item_means {
        stats = stats.with_item_means();
    }
    let spans = position_spans(rec.positions);
    let batch_size = rec.batch_size.max(1);
    // Items are recorded in a fixed order, so "the first k batches" names the items a
    // checkpoint holds; a resumed run starts after them.
    let mut first = 0;
    if let Some(ck) = checkpoints.as_deref_mut()
        && let Some((done, k)) = ck.start(chosen.len(), batch_size)?
    {
        (stats, first) = (done, k);
    }
    let bar = crate::progress::Progress::new("record", chosen.len() as u64, "items");
    bar.set_position((first * batch_size).min(chosen.len()) as u64);
    for (bi, chunk) in chosen.chunks(batch_size).enumerate().skip(first) {
        if let Some(ck) = checkpoints.as_deref_mut()
            && bi > first
        {
            ck.between_batches(&stats, bi, bi * batch_size)?;
        }
        let _span = tracing::trace_span!("batch", index = bi).entered();
        let mut batch = RecordBatch {
            ids: Vec::new(),
            positions: Vec::new(),
            labels: Vec::new(),
            keys: Vec::new(),
        };
        let rows = rows_of(backend, rec, spans, chunk)?;
        for ((li, key, it, _), (ids, mask)) in chunk.iter().zip(rows) {
            let n = mask.iter().filter(|&&m| m).count();
            if n == 0 {
                // An item without counted tokens has no mean: it is left out of both levels,
                // so `items` always equals the number of item means in the statistics.
                warn!(item = %it.id, "no token of the item falls in the recorded positions; item skipped");
                continue;
            }
            // Keys are ordinals within the label: the bootstrap weights of an item depend on
            // the seed, its label and this key only (not on batching or sharding).
            stats.count_item(*li, *key, n as f64);
            batch.ids.push(ids);
            batch.positions.push(mask);
            batch.labels.push(*li);
            batch.keys.push(*key);
        }
        if !batch.ids.is_empty() {
            backend
                .record(&rec.tap, &batch, None, &mut stats)
                .map_err(RunError::component("record"))?;
        }
        bar.inc(chunk.len() as u64);
    }
    Ok(stats)
}

/// A row to forward: its token ids and the mask of its counted positions.
type Row = (Vec<u32>, Vec<bool>);

/// The token ids of each row of `chunk` and the mask of its counted positions. With
/// `positions = "generated"` the rendered prompt goes through the backend's chat encoding and
/// the model continues it greedily (at most `record.max_new_tokens`, stopping at its end of
/// sequence); the row is prompt + reply, and the counted positions are the reply tokens that
/// are fed back as inputs, i.e. every new token but the last: exactly the positions a decoding
/// loop runs the model on after the prompt (the C-voice follow-up counts its vLLM decode
/// steps). Otherwise the rendered prompt is encoded and `spans` selects the positions (none:
/// every position).
fn rows_of(
    backend: &mut dyn ModelBackend,
    rec: &RecordSpec,
    spans: &[&str],
    chunk: &[Chosen<'_>],
) -> Result<Vec<Row>, RunError> {
    let generated = rec.positions == Positions::Generated;
    let mut rows = Vec::with_capacity(chunk.len());
    for &(_, _, it, ci) in chunk {
        let (template, key_path) = row_template(rec, ci, it.language);
        let r =
            render_item(template, it).map_err(|m| RunError::Config(format!("{key_path}: {m}")))?;
        if generated {
            let enc = backend
                .encode_chat(None, &r.text)
                .map_err(RunError::component("record"))?;
            rows.push((enc.ids, Vec::new()));
            continue;
        }
        let enc = backend
            .encode(&r.text)
            .map_err(RunError::component("record"))?;
        let mask: Vec<bool> = if spans.is_empty() {
            vec![true; enc.ids.len()]
        } else {
            enc.offsets
                .iter()
                .map(|&(s, e)| overlaps(&r, spans, s, e))
                .collect()
        };
        rows.push((enc.ids, mask));
    }
    if generated {
        let requests: Vec<GenerateRequest> = rows
            .iter()
            .map(|(ids, _)| GenerateRequest {
                prompt: ids.clone(),
                max_new_tokens: rec.max_new_tokens(),
                stop_at_eos: true,
                ..GenerateRequest::default()
            })
            .collect();
        let replies = backend
            .generate(&requests, None)
            .map_err(RunError::component("record"))?;
        for ((ids, mask), reply) in rows.iter_mut().zip(replies) {
            let n = reply.tokens.len();
            *mask = vec![false; ids.len()];
            mask.extend((0..n).map(|k| k + 1 < n));
            ids.extend(reply.tokens);
        }
    }
    Ok(rows)
}

/// A `[record]` section for unit tests: tap `mlp.gate_act`, story positions, batches of 2,
/// `template` for both languages and one `[[record.conditions]]` entry per `(name, template)`.
#[cfg(test)]
pub(crate) fn test_record_spec(
    label_by: LabelBy,
    languages: &[Language],
    max_items_per_label: usize,
    template: &str,
    conditions: &[(&str, &str)],
) -> RecordSpec {
    let both = |t: &str| valex_manifest::TemplateConfig {
        zh: t.into(),
        en: t.into(),
    };
    RecordSpec {
        tap: "mlp.gate_act".into(),
        positions: Positions::Story,
        label_by,
        languages: languages.to_vec(),
        batch_size: 2,
        max_items_per_label,
        template: both(template),
        conditions: conditions
            .iter()
            .map(|(name, t)| valex_manifest::RecordConditionConfig {
                name: (*name).into(),
                template: both(t),
            })
            .collect(),
        bootstrap: 0,
        keep_item_means: false,
        self_check: false,
        self_check_tolerance: None,
        checkpoint_every: None,
        max_new_tokens: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, value: &str, lang: Language, kind: ItemKind) -> Item {
        Item {
            id: id.into(),
            value: value.into(),
            language: lang,
            kind,
            story: "s".into(),
            rationale: Some("r".into()),
            aligned: "a".into(),
            violating: "b".into(),
            conflict_motive: None,
            parallel_id: None,
        }
    }

    #[test]
    fn record_items_groups_labels_in_order_and_caps() {
        let items = vec![
            item("1", "b", Language::Zh, ItemKind::Activation),
            item("2", "a", Language::En, ItemKind::Activation),
            item("3", "b", Language::En, ItemKind::Activation),
            item("4", "b", Language::Zh, ItemKind::Evaluation),
            item("5", "b", Language::Zh, ItemKind::Activation),
        ];
        let mut rec = test_record_spec(
            LabelBy::Value,
            &[Language::Zh, Language::En],
            2,
            "{story}",
            &[],
        );
        let (labels, chosen) = record_items(&rec, &items);
        assert_eq!(labels, vec!["b", "a"]);
        let ids: Vec<_> = chosen
            .iter()
            .map(|(l, k, i, _)| (*l, *k, i.id.as_str()))
            .collect();
        assert_eq!(ids, vec![(0, 0, "1"), (1, 0, "2"), (0, 1, "3")]);
        rec.label_by = LabelBy::ValueLanguage;
        rec.languages = vec![Language::Zh];
        let (labels, chosen) = record_items(&rec, &items);
        assert_eq!(labels, vec!["b/zh"]);
        assert_eq!(chosen.len(), 2);
    }

    #[test]
    fn record_conditions_give_one_row_per_item_and_condition_with_ordinal_keys() {
        let items = vec![
            item("1", "b", Language::Zh, ItemKind::Activation),
            item("2", "a", Language::Zh, ItemKind::Activation),
            item("3", "b", Language::Zh, ItemKind::Activation),
            item("4", "b", Language::Zh, ItemKind::Evaluation),
        ];
        let rec = test_record_spec(
            LabelBy::ValueCondition,
            &[Language::Zh],
            0,
            "unused {story}",
            &[("support", "S {story}"), ("conflict", "C {story}")],
        );
        let (labels, chosen) = record_items(&rec, &items);
        assert_eq!(
            labels,
            ["b/support", "b/conflict", "a/support", "a/conflict"]
        );
        let rows: Vec<_> = chosen
            .iter()
            .map(|(l, k, i, c)| (*l, *k, i.id.as_str(), *c))
            .collect();
        assert_eq!(
            rows,
            [
                (0, 0, "1", Some(0)),
                (1, 0, "1", Some(1)),
                (2, 0, "2", Some(0)),
                (3, 0, "2", Some(1)),
                (0, 1, "3", Some(0)),
                (1, 1, "3", Some(1)),
            ]
        );
        let (t, key) = row_template(&rec, Some(1), Language::Zh);
        assert_eq!(
            (t, key.as_str()),
            ("C {story}", "record.conditions[1].template.zh")
        );
        assert_eq!(
            row_template(&rec, None, Language::En).1,
            "record.template.en"
        );
    }
}
