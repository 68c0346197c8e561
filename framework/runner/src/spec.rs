//! What the runner executes: the validated manifest's stage settings and the components built
//! from it. [`spec_from_plan`] turns a manifest's `ExperimentPlan` into a [`RunSpec`]; tests
//! and other front ends can build a `RunSpec` directly.

use valex_core::{
    BackendLoader, Dataset, Evaluator, Intervention, Item, Language, Reporter, Scorer,
};
use valex_manifest::{
    EvaluateConfig, ExperimentPlan, GroupBy, LabelBy, Positions, RecordConfig, Rendered,
    TemplateError, render_template,
};

/// Component ids and params as written in the manifest, for records.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ComponentRecord {
    /// `kind/name`.
    pub id: String,
    /// Params as given (after layering).
    pub params: serde_json::Value,
}

/// Everything the runner needs.
pub struct RunSpec {
    /// Experiment name.
    pub name: String,
    /// Seed for every random choice.
    pub seed: u64,
    /// The record stage, if any.
    pub record: Option<RecordConfig>,
    /// The evaluation stage, if any (runs only with record and a scorer).
    pub evaluate: Option<EvaluateConfig>,
    /// `[score] group_by`: run the scorer once per group of labels (`None`: once over all).
    pub score_group_by: Option<GroupBy>,
    /// Built components.
    pub components: Components,
    /// Where the `[intervention]` edits apply (`targeted`, random controls, other sets).
    pub intervention_positions: valex_core::EditPositions,
    /// `(role, component)` for every component used: backend, dataset, scorer, intervention,
    /// evaluator, reporter (absent stages are omitted).
    pub records: Vec<(String, ComponentRecord)>,
}

/// Components built from the manifest.
pub struct Components {
    /// The model.
    pub backend: Box<dyn BackendLoader>,
    /// The reference model of the self-checks (`[model.reference]`), if any.
    pub reference_backend: Option<Box<dyn BackendLoader>>,
    /// The data.
    pub dataset: Box<dyn Dataset>,
    /// The scorer (needed by evaluate).
    pub scorer: Option<Box<dyn Scorer>>,
    /// The intervention used for the value's own neurons (condition `targeted`) and the
    /// controls.
    pub intervention: Box<dyn Intervention>,
    /// Extra own-set conditions (`[[evaluate.conditions]]`): name, canonical id, intervention.
    pub conditions: Vec<(String, String, Box<dyn Intervention>)>,
    /// The evaluator.
    pub evaluator: Option<Box<dyn Evaluator>>,
    /// Reporters with their ids.
    pub reporters: Vec<(String, Box<dyn Reporter>)>,
}

/// Turns a resolved manifest into a [`RunSpec`].
pub fn spec_from_plan(plan: ExperimentPlan) -> RunSpec {
    let m = plan.manifest;
    let ids = plan.ids;
    let rec = |id: &str, params: &serde_json::Value| ComponentRecord {
        id: id.to_owned(),
        params: params.clone(),
    };
    // Canonical ids (`scorer/lape` even where the manifest wrote `lape`).
    let mut records = vec![("backend".to_owned(), rec(&ids.backend, &m.model.params))];
    if let (Some(r), Some(id)) = (&m.model.reference, &ids.reference_backend) {
        records.push(("reference backend".to_owned(), rec(id, &r.params)));
    }
    records.push(("dataset".to_owned(), rec(&ids.dataset, &m.dataset.params)));
    if let (Some(s), Some(id)) = (&m.score, &ids.scorer) {
        records.push(("scorer".to_owned(), rec(id, &s.params)));
    }
    records.push((
        "intervention".to_owned(),
        rec(&ids.intervention, &m.intervention.params),
    ));
    if let (Some(e), Some(id)) = (&m.evaluate, &ids.evaluator) {
        records.push(("evaluator".to_owned(), rec(id, &e.params)));
        for (c, id) in e.conditions.iter().zip(&ids.conditions) {
            records.push(("condition".to_owned(), rec(id, &c.params)));
        }
    }
    for (r, id) in m.reporters.iter().zip(&ids.reporters) {
        records.push(("reporter".to_owned(), rec(id, &r.params)));
    }
    RunSpec {
        name: m.experiment.name.clone(),
        seed: m.experiment.seed,
        record: m.record.clone(),
        evaluate: m.evaluate.clone(),
        score_group_by: m.score.as_ref().and_then(|s| s.group_by),
        intervention_positions: m.intervention.positions,
        components: Components {
            backend: plan.backend,
            reference_backend: plan.reference_backend,
            dataset: plan.dataset,
            scorer: plan.scorer,
            intervention: plan.intervention,
            evaluator: plan.evaluator,
            conditions: plan.conditions,
            reporters: plan.reporters,
        },
        records,
    }
}

/// Span names a position selector counts (empty = every token of the prompt; for
/// `generated`, the record stage marks the reply's tokens instead).
pub fn position_spans(p: Positions) -> &'static [&'static str] {
    match p {
        // Generated positions are not spans of the prompt (the record stage marks them).
        Positions::All | Positions::Generated => &[],
        Positions::Story => &["story"],
        Positions::Rationale => &["rationale"],
        Positions::StoryRationale => &["story", "rationale"],
    }
}

/// The statistics label of an item of `value` in `language`. With `value-condition` this is
/// the value: the record stage appends `/<condition>` for each `[[record.conditions]]` entry
/// ([`condition_label`]).
pub fn label_of(by: LabelBy, value: &str, language: Language) -> String {
    match by {
        LabelBy::Value | LabelBy::ValueCondition => value.to_owned(),
        LabelBy::ValueLanguage => format!("{value}/{}", language.as_str()),
        LabelBy::Language => language.as_str().to_owned(),
    }
}

/// The label of an item of `value` recorded under the record condition `condition`
/// (`诚信/support`).
pub fn condition_label(value: &str, condition: &str) -> String {
    format!("{value}/{condition}")
}

/// Renders a record template for `item`.
///
/// # Errors
/// Template errors, e.g. `{rationale}` for an item without one.
pub fn render_item(template: &str, item: &Item) -> Result<Rendered, TemplateError> {
    render_template(template, |name| match name {
        "story" => Some(item.story.as_str()),
        "rationale" => item.rationale.as_deref(),
        "aligned" => Some(item.aligned.as_str()),
        "violating" => Some(item.violating.as_str()),
        "value" => Some(item.value.as_str()),
        "value_name" => Some(valex_core::dataset::value_name(&item.value, item.language)),
        "conflict_motive" => item.conflict_motive.as_deref(),
        _ => None,
    })
}

/// True when a token covering bytes `[start, end)` overlaps a span named in `names`.
/// Zero-width (special) tokens never overlap.
pub fn overlaps(r: &Rendered, names: &[&str], start: usize, end: usize) -> bool {
    end > start
        && r.spans
            .iter()
            .any(|(n, span)| names.contains(n) && start < span.end && end > span.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::ItemKind;

    #[test]
    fn story_positions_select_overlapping_tokens_only() {
        let item = Item {
            id: "x".into(),
            value: "诚信".into(),
            language: Language::Zh,
            kind: ItemKind::Activation,
            story: "他说了真话。".into(),
            rationale: Some("诚实".into()),
            aligned: "a".into(),
            violating: "b".into(),
            conflict_motive: None,
            parallel_id: None,
        };
        let r = render_item("故事：{story}\n理由：{rationale}", &item).unwrap();
        let story = r.spans_of("story")[0].clone();
        assert_eq!(&r.text[story.clone()], "他说了真话。");
        assert!(overlaps(&r, &["story"], story.start, story.start + 3));
        assert!(!overlaps(&r, &["story"], 0, 3));
        assert!(!overlaps(&r, &["story"], story.start, story.start));
        assert!(overlaps(
            &r,
            position_spans(Positions::StoryRationale),
            r.text.len() - 3,
            r.text.len()
        ));
        assert_eq!(
            label_of(LabelBy::ValueLanguage, "诚信", Language::En),
            "诚信/en"
        );
        let mut no_why = item.clone();
        no_why.rationale = None;
        assert!(render_item("{rationale}", &no_why).is_err());
    }
}
