//! Resolving a manifest into an [`ExperimentPlan`]: every component id looked up in the
//! [`Registry`] (with "did you mean") and every factory run on its params, all problems
//! collected with their key paths (`score.params.top_rate`) and origins.
//!
//! This module owns the registry side of validation; it must not read files or layers
//! (that is `load.rs`). Capabilities of the backend (taps) can only be checked once the
//! model is loaded, so the runner does that.

use std::fmt;
use std::path::{Path, PathBuf};

use valex_core::{
    BackendLoader, ComponentInfo, ConfigError, Dataset, Evaluator, FactoryContext, Intervention,
    Kind, Registry, Reporter, Scorer,
};

use crate::error::{ManifestError, ManifestErrorKind as K, ManifestErrors};
use crate::load::{LoadOptions, LoadedManifest, Origins, child, finish, layer};
use crate::raw::Manifest;

/// The canonical ids (`kind/name`) of the planned components, for records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComponentIds {
    /// `model.backend`.
    pub backend: String,
    /// `dataset.use`.
    pub dataset: String,
    /// `score.use`, when there is a `[score]` section.
    pub scorer: Option<String>,
    /// `intervention.use`.
    pub intervention: String,
    /// `evaluate.use`, when there is an `[evaluate]` section.
    pub evaluator: Option<String>,
    /// `evaluate.conditions[i].use`, in order (empty without extra conditions).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<String>,
    /// `reporters[i].use`, in order.
    pub reporters: Vec<String>,
    /// `model.reference.backend`, when the manifest names a reference backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_backend: Option<String>,
}

/// A manifest whose components were built through the registry: ready to run.
pub struct ExperimentPlan {
    /// The typed manifest the plan was built from.
    pub manifest: Manifest,
    /// Folder that relative params paths were resolved against.
    pub base_dir: PathBuf,
    /// Canonical ids of the components.
    pub ids: ComponentIds,
    /// Registry entries (id, version, source plugin) of every component, in manifest order:
    /// backend, dataset, scorer, intervention, evaluator, conditions, reporters.
    pub components: Vec<ComponentInfo>,
    /// The backend loader (`[model]`); it loads the model on demand.
    pub backend: Box<dyn BackendLoader>,
    /// The reference backend's loader (`[model.reference]`), for the self-checks.
    pub reference_backend: Option<Box<dyn BackendLoader>>,
    /// The dataset reader (`[dataset]`).
    pub dataset: Box<dyn Dataset>,
    /// The scorer (`[score]`), if any.
    pub scorer: Option<Box<dyn Scorer>>,
    /// The intervention (`[intervention]`).
    pub intervention: Box<dyn Intervention>,
    /// The evaluator (`[evaluate]`), if any.
    pub evaluator: Option<Box<dyn Evaluator>>,
    /// The extra own-set conditions (`[[evaluate.conditions]]`): name, canonical id and
    /// intervention, in order.
    pub conditions: Vec<(String, String, Box<dyn Intervention>)>,
    /// The reporters with their canonical ids, in order.
    pub reporters: Vec<(String, Box<dyn Reporter>)>,
}

impl fmt::Debug for ExperimentPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExperimentPlan")
            .field("experiment", &self.manifest.experiment.name)
            .field("base_dir", &self.base_dir)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

impl ExperimentPlan {
    /// Same as [`resolve`].
    ///
    /// # Errors
    /// See [`resolve`].
    pub fn resolve(
        loaded: &LoadedManifest,
        registry: &Registry,
    ) -> Result<ExperimentPlan, ManifestErrors> {
        resolve(loaded, registry)
    }
}

/// Builds every component of `loaded` through `registry`'s factories.
///
/// # Errors
/// Every unknown component id (with a suggestion and the available ids) and every params
/// problem a factory reports, each with its key path and origin.
pub fn resolve(
    loaded: &LoadedManifest,
    registry: &Registry,
) -> Result<ExperimentPlan, ManifestErrors> {
    let cx = FactoryContext {
        base_dir: loaded.base_dir.clone(),
    };
    let (built, mut errors) = build_all(
        slots_from_manifest(&loaded.manifest),
        registry,
        &cx,
        &loaded.origins,
    );
    errors.extend(crate::neutral_text::check(
        &loaded.manifest,
        &cx.base_dir,
        &loaded.origins,
    ));
    if !errors.is_empty() {
        return Err(ManifestErrors {
            file: loaded.path.clone(),
            errors,
        });
    }
    assemble(loaded.manifest.clone(), cx.base_dir, built).map_err(|e| ManifestErrors {
        file: loaded.path.clone(),
        errors: vec![e],
    })
}

/// Loads `path` and resolves it, reporting schema problems AND component problems (unknown
/// ids, bad params) together, so one `valex validate` shows everything.
///
/// # Errors
/// Everything [`load()`](crate::load()) and [`resolve`] report. Unreadable or malformed files stop
/// before the other checks.
pub fn load_and_resolve(
    path: &Path,
    opts: &LoadOptions,
    registry: &Registry,
) -> Result<(LoadedManifest, ExperimentPlan), ManifestErrors> {
    let layered = layer(path, opts)?;
    let cx = FactoryContext {
        base_dir: layered.base_dir.clone(),
    };
    let (built, component_errors) = build_all(
        slots_from_json(&layered.json),
        registry,
        &cx,
        &layered.origins,
    );
    let mut errors = layered.errors.clone();
    errors.extend(component_errors);
    if !errors.is_empty() {
        return Err(ManifestErrors {
            file: path.to_path_buf(),
            errors,
        });
    }
    let loaded = finish(layered).map_err(|(file, errors)| ManifestErrors { file, errors })?;
    let errors = crate::neutral_text::check(&loaded.manifest, &cx.base_dir, &loaded.origins);
    if !errors.is_empty() {
        return Err(ManifestErrors {
            file: loaded.path.clone(),
            errors,
        });
    }
    let plan =
        assemble(loaded.manifest.clone(), cx.base_dir, built).map_err(|e| ManifestErrors {
            file: loaded.path.clone(),
            errors: vec![e],
        })?;
    Ok((loaded, plan))
}

/// One component to build.
struct Slot {
    /// `model`, `score`, `reporters[0]`.
    key: String,
    /// Key of the id: `model.backend`, `score.use`.
    id_key: String,
    kind: Kind,
    id: String,
    params: serde_json::Value,
    /// The condition's name, for `evaluate.conditions[i]` slots.
    condition: Option<String>,
}

enum Built {
    Backend(Box<dyn BackendLoader>),
    /// `[model.reference]`.
    Reference(Box<dyn BackendLoader>),
    Dataset(Box<dyn Dataset>),
    Scorer(Box<dyn Scorer>),
    Intervention(Box<dyn Intervention>),
    Evaluator(Box<dyn Evaluator>),
    Reporter(Box<dyn Reporter>),
    /// An `[[evaluate.conditions]]` intervention, with the condition's name.
    Condition(String, Box<dyn Intervention>),
}

/// The slot key of `[model.reference]`.
const REFERENCE: &str = "model.reference";

/// Sections with one component: section, kind, id key.
const SECTIONS: [(&str, Kind, &str); 5] = [
    ("model", Kind::Backend, "backend"),
    ("dataset", Kind::Dataset, "use"),
    ("score", Kind::Scorer, "use"),
    ("intervention", Kind::Intervention, "use"),
    ("evaluate", Kind::Evaluator, "use"),
];

fn slot(key: String, id_field: &str, kind: Kind, id: &str, params: &serde_json::Value) -> Slot {
    Slot {
        id_key: child(&key, id_field),
        key,
        kind,
        id: id.to_owned(),
        params: params.clone(),
        condition: None,
    }
}

fn condition_slot(i: usize, name: &str, id: &str, params: &serde_json::Value) -> Slot {
    Slot {
        condition: Some(name.to_owned()),
        ..slot(
            format!("evaluate.conditions[{i}]"),
            "use",
            Kind::Intervention,
            id,
            params,
        )
    }
}

fn slots_from_manifest(m: &Manifest) -> Vec<Slot> {
    let mut out = vec![slot(
        "model".into(),
        "backend",
        Kind::Backend,
        &m.model.backend,
        &m.model.params,
    )];
    if let Some(r) = &m.model.reference {
        out.push(slot(
            REFERENCE.into(),
            "backend",
            Kind::Backend,
            &r.backend,
            &r.params,
        ));
    }
    out.extend([slot(
        "dataset".into(),
        "use",
        Kind::Dataset,
        &m.dataset.id,
        &m.dataset.params,
    )]);
    if let Some(s) = &m.score {
        out.push(slot("score".into(), "use", Kind::Scorer, &s.id, &s.params));
    }
    out.push(slot(
        "intervention".into(),
        "use",
        Kind::Intervention,
        &m.intervention.id,
        &m.intervention.params,
    ));
    if let Some(e) = &m.evaluate {
        out.push(slot(
            "evaluate".into(),
            "use",
            Kind::Evaluator,
            &e.id,
            &e.params,
        ));
        for (i, c) in e.conditions.iter().enumerate() {
            out.push(condition_slot(i, &c.name, &c.id, &c.params));
        }
    }
    for (i, r) in m.reporters.iter().enumerate() {
        out.push(slot(
            format!("reporters[{i}]"),
            "use",
            Kind::Reporter,
            &r.id,
            &r.params,
        ));
    }
    out
}

/// Slots whose id is a string and whose params are a table; the schema check reports the
/// others.
fn slots_from_json(root: &serde_json::Value) -> Vec<Slot> {
    let empty = serde_json::Value::Object(serde_json::Map::new());
    let from_table = |key: String, t: &serde_json::Value, field: &str, kind: Kind| {
        let id = t.get(field)?.as_str()?;
        let params = t.get("params").unwrap_or(&empty);
        params
            .is_object()
            .then(|| slot(key, field, kind, id, params))
    };
    let mut out = Vec::new();
    for (section, kind, field) in SECTIONS {
        if let Some(t) = root.get(section)
            && let Some(s) = from_table(section.to_owned(), t, field, kind)
        {
            out.push(s);
        }
        if section == "model"
            && let Some(t) = root.get("model").and_then(|m| m.get("reference"))
        {
            out.extend(from_table(
                REFERENCE.to_owned(),
                t,
                "backend",
                Kind::Backend,
            ));
        }
    }
    let conditions = root
        .get("evaluate")
        .and_then(|e| e.get("conditions"))
        .and_then(|c| c.as_array());
    for (i, t) in conditions.into_iter().flatten().enumerate() {
        let (Some(id), Some(name)) = (
            t.get("use").and_then(|v| v.as_str()),
            t.get("name").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let params = t.get("params").unwrap_or(&empty);
        if params.is_object() {
            out.push(condition_slot(i, name, id, params));
        }
    }
    if let Some(items) = root.get("reporters").and_then(|r| r.as_array()) {
        for (i, t) in items.iter().enumerate() {
            out.extend(from_table(
                format!("reporters[{i}]"),
                t,
                "use",
                Kind::Reporter,
            ));
        }
    }
    out
}

fn build_all(
    slots: Vec<Slot>,
    registry: &Registry,
    cx: &FactoryContext,
    origins: &Origins,
) -> (Vec<(ComponentInfo, Built)>, Vec<ManifestError>) {
    let mut built = Vec::new();
    let mut errors = Vec::new();
    for s in slots {
        match build_one(&s, registry, cx, origins) {
            Ok(b) => {
                tracing::debug!(key = %s.key, component = %b.0.id, "component built");
                built.push(b);
            }
            Err(e) => errors.push(e),
        }
    }
    (built, errors)
}

fn build_one(
    s: &Slot,
    registry: &Registry,
    cx: &FactoryContext,
    origins: &Origins,
) -> Result<(ComponentInfo, Built), ManifestError> {
    let unknown = |message: String| {
        ManifestError::new(K::UnknownComponent, message)
            .at(&s.id_key)
            .from_origin(origins.get(&s.id_key))
    };
    if let Some((prefix, _)) = s.id.split_once('/')
        && prefix != s.kind.as_str()
    {
        return Err(unknown(format!(
            "expected a {kind} id ({kind}/<name>), found {:?}",
            s.id,
            kind = s.kind
        )));
    }
    let info = registry
        .lookup(s.kind, &s.id)
        .map_err(|e| unknown(e.to_string()))?
        .0
        .clone();
    let (id, p) = (info.id.as_str(), &s.params);
    let built = match s.kind {
        Kind::Backend if s.key == REFERENCE => registry.backend(id, p, cx).map(Built::Reference),
        Kind::Backend => registry.backend(id, p, cx).map(Built::Backend),
        Kind::Dataset => registry.dataset(id, p, cx).map(Built::Dataset),
        Kind::Scorer => registry.scorer(id, p, cx).map(Built::Scorer),
        Kind::Intervention => registry
            .intervention(id, p, cx)
            .map(|x| match &s.condition {
                Some(name) => Built::Condition(name.clone(), x),
                None => Built::Intervention(x),
            }),
        Kind::Evaluator => registry.evaluator(id, p, cx).map(Built::Evaluator),
        Kind::Reporter => registry.reporter(id, p, cx).map(Built::Reporter),
        other => {
            return Err(unknown(format!(
                "components of kind {other} cannot be used here"
            )));
        }
    };
    match built {
        Ok(b) => Ok((info, b)),
        Err(e) => Err(params_error(s, &info.id, e, origins)),
    }
}

/// Places a factory's error under `<slot>.params[.<key>]`. serde's "unknown field `x`" and
/// "missing field `x`" name the key even when the factory did not.
fn params_error(s: &Slot, id: &str, e: ConfigError, origins: &Origins) -> ManifestError {
    let base = child(&s.key, "params");
    let named = e.key.clone().or_else(|| {
        ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| e.message.strip_prefix(p))
            .and_then(|rest| rest.split_once('`'))
            .map(|(field, _)| field.to_owned())
    });
    let key = named.map_or(base.clone(), |k| child(&base, &k));
    let origin = if e.message.starts_with("missing field") {
        None
    } else {
        origins.nearest(&key).or_else(|| origins.get(&s.id_key))
    };
    ManifestError::new(K::BadParams, format!("{id}: {}", e.message))
        .at(key)
        .from_origin(origin)
}

fn assemble(
    manifest: Manifest,
    base_dir: PathBuf,
    built: Vec<(ComponentInfo, Built)>,
) -> Result<ExperimentPlan, ManifestError> {
    let (mut backend, mut dataset, mut scorer, mut intervention, mut evaluator) =
        (None, None, None, None, None);
    let mut reference = None;
    let mut reporters = Vec::new();
    let mut conditions = Vec::new();
    let mut components = Vec::new();
    for (info, b) in built {
        let id = info.id.clone();
        components.push(info);
        match b {
            Built::Backend(x) => backend = Some((id, x)),
            Built::Reference(x) => reference = Some((id, x)),
            Built::Dataset(x) => dataset = Some((id, x)),
            Built::Scorer(x) => scorer = Some((id, x)),
            Built::Intervention(x) => intervention = Some((id, x)),
            Built::Evaluator(x) => evaluator = Some((id, x)),
            Built::Reporter(x) => reporters.push((id, x)),
            Built::Condition(name, x) => conditions.push((name, id, x)),
        }
    }
    let missing = |what: &str| {
        ManifestError::new(K::Internal, format!("no {what} component was built")).at(what)
    };
    let backend = backend.ok_or_else(|| missing("model"))?;
    let dataset = dataset.ok_or_else(|| missing("dataset"))?;
    let intervention = intervention.ok_or_else(|| missing("intervention"))?;
    let ids = ComponentIds {
        backend: backend.0,
        dataset: dataset.0,
        scorer: scorer.as_ref().map(|s| s.0.clone()),
        intervention: intervention.0,
        evaluator: evaluator.as_ref().map(|e| e.0.clone()),
        conditions: conditions.iter().map(|c| c.1.clone()).collect(),
        reporters: reporters.iter().map(|r| r.0.clone()).collect(),
        reference_backend: reference.as_ref().map(|r| r.0.clone()),
    };
    Ok(ExperimentPlan {
        manifest,
        base_dir,
        ids,
        components,
        backend: backend.1,
        reference_backend: reference.map(|r| r.1),
        dataset: dataset.1,
        scorer: scorer.map(|s| s.1),
        intervention: intervention.1,
        evaluator: evaluator.map(|e| e.1),
        conditions,
        reporters,
    })
}
