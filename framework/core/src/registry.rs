//! The component registry: ids to factories, built once and then frozen.
//!
//! Each built-in crate exposes one [`Plugin`] that registers all its components. A factory
//! deserialises its own params (`#[serde(deny_unknown_fields)]`), so unknown params are
//! rejected in the same way for every component.
//!
//! Built-in factories are plain `fn` pointers ([`AnyFactory`]). Components of run-time loaded
//! libraries need state (the library they call into), so the registry stores every factory as
//! a shared closure ([`AnySharedFactory`]); [`RegistryBuilder::register_shared`] adds one
//! under an explicit source (the library path).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use crate::dataset::Dataset;
use crate::error::ConfigError;
use crate::evaluator::Evaluator;
use crate::id::{ComponentId, Kind};
use crate::intervention::Intervention;
use crate::model::BackendLoader;
use crate::reporter::Reporter;
use crate::scorer::Scorer;

/// What a factory may know besides its params.
#[derive(Debug, Clone, Default)]
pub struct FactoryContext {
    /// Folder that relative paths in params are resolved against (the manifest's folder).
    pub base_dir: PathBuf,
}

impl FactoryContext {
    /// Resolves a path from params against [`FactoryContext::base_dir`].
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Builds a component of kind `T` from its params.
pub type Factory<T> = fn(&serde_json::Value, &FactoryContext) -> Result<Box<T>, ConfigError>;

/// A factory of any kind.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub enum AnyFactory {
    /// `backend/*`
    Backend(Factory<dyn BackendLoader>),
    /// `dataset/*`
    Dataset(Factory<dyn Dataset>),
    /// `scorer/*`
    Scorer(Factory<dyn Scorer>),
    /// `intervention/*`
    Intervention(Factory<dyn Intervention>),
    /// `evaluator/*`
    Evaluator(Factory<dyn Evaluator>),
    /// `reporter/*`
    Reporter(Factory<dyn Reporter>),
}

impl std::fmt::Debug for AnyFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnyFactory({})", self.kind())
    }
}

impl AnyFactory {
    fn kind(&self) -> Kind {
        match self {
            AnyFactory::Backend(_) => Kind::Backend,
            AnyFactory::Dataset(_) => Kind::Dataset,
            AnyFactory::Scorer(_) => Kind::Scorer,
            AnyFactory::Intervention(_) => Kind::Intervention,
            AnyFactory::Evaluator(_) => Kind::Evaluator,
            AnyFactory::Reporter(_) => Kind::Reporter,
        }
    }
}

/// Builds a component of kind `T` from its params; unlike [`Factory`] it may hold state
/// (an external component's proxy factory holds its library).
pub type SharedFactory<T> =
    Arc<dyn Fn(&serde_json::Value, &FactoryContext) -> Result<Box<T>, ConfigError> + Send + Sync>;

/// A shared factory of any kind: how the registry stores every factory.
#[derive(Clone)]
#[non_exhaustive]
pub enum AnySharedFactory {
    /// `backend/*`
    Backend(SharedFactory<dyn BackendLoader>),
    /// `dataset/*`
    Dataset(SharedFactory<dyn Dataset>),
    /// `scorer/*`
    Scorer(SharedFactory<dyn Scorer>),
    /// `intervention/*`
    Intervention(SharedFactory<dyn Intervention>),
    /// `evaluator/*`
    Evaluator(SharedFactory<dyn Evaluator>),
    /// `reporter/*`
    Reporter(SharedFactory<dyn Reporter>),
}

impl std::fmt::Debug for AnySharedFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AnySharedFactory({})", self.kind())
    }
}

impl AnySharedFactory {
    /// The kind of component the factory builds.
    pub fn kind(&self) -> Kind {
        match self {
            AnySharedFactory::Backend(_) => Kind::Backend,
            AnySharedFactory::Dataset(_) => Kind::Dataset,
            AnySharedFactory::Scorer(_) => Kind::Scorer,
            AnySharedFactory::Intervention(_) => Kind::Intervention,
            AnySharedFactory::Evaluator(_) => Kind::Evaluator,
            AnySharedFactory::Reporter(_) => Kind::Reporter,
        }
    }
}

impl From<AnyFactory> for AnySharedFactory {
    fn from(f: AnyFactory) -> Self {
        match f {
            AnyFactory::Backend(f) => AnySharedFactory::Backend(Arc::new(f)),
            AnyFactory::Dataset(f) => AnySharedFactory::Dataset(Arc::new(f)),
            AnyFactory::Scorer(f) => AnySharedFactory::Scorer(Arc::new(f)),
            AnyFactory::Intervention(f) => AnySharedFactory::Intervention(Arc::new(f)),
            AnyFactory::Evaluator(f) => AnySharedFactory::Evaluator(Arc::new(f)),
            AnyFactory::Reporter(f) => AnySharedFactory::Reporter(Arc::new(f)),
        }
    }
}

/// A registered component as `valex plugins` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComponentInfo {
    /// `kind/name`.
    pub id: String,
    /// Kind.
    pub kind: String,
    /// Component version.
    pub version: String,
    /// The plugin that registered it (`valex-scorers`), or the path of the external library
    /// that provides it.
    pub source: String,
    /// One-line description.
    pub summary: String,
}

struct Entry {
    info: ComponentInfo,
    factory: AnySharedFactory,
}

/// Registry errors.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two plugins registered the same id.
    ///
    /// Resolution: remove one of the plugins, or rename the component.
    #[error("component {id} is registered twice: by {first} and by {second}")]
    Duplicate {
        /// The id.
        id: String,
        /// The plugin that registered it first.
        first: String,
        /// The plugin that tried again.
        second: String,
    },
    /// An id that is not `kind/name` or whose kind does not match the factory.
    ///
    /// Resolution: use a lowercase kebab-case name under the factory's kind.
    #[error("invalid component id {id}: {reason}")]
    InvalidId {
        /// The id as given.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// No component with this id.
    ///
    /// Resolution: pick one of the listed ids (`valex plugins` lists them all).
    #[error("unknown {kind} \"{name}\"{suggestion}; available: {available}")]
    Unknown {
        /// Kind asked for.
        kind: String,
        /// Name asked for.
        name: String,
        /// ` (did you mean "x"?)` or empty.
        suggestion: String,
        /// Comma-separated ids of that kind.
        available: String,
    },
}

/// A source of components: one per built-in crate or external library.
pub trait Plugin {
    /// The plugin's name (crate or library name).
    fn name(&self) -> &'static str;
    /// Registers every component of the plugin.
    ///
    /// # Errors
    /// Duplicate or malformed ids.
    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError>;
}

/// Collects components; [`RegistryBuilder::build`] freezes it.
#[derive(Default)]
pub struct RegistryBuilder {
    entries: BTreeMap<String, Entry>,
    current_source: String,
}

impl RegistryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers every component of `plugin`.
    ///
    /// # Errors
    /// The plugin's registration errors.
    pub fn add_plugin(&mut self, plugin: &dyn Plugin) -> Result<&mut Self, RegistryError> {
        self.current_source = plugin.name().to_owned();
        plugin.register(self)?;
        Ok(self)
    }

    /// Registers one component.
    ///
    /// # Errors
    /// A malformed id, an id whose kind differs from the factory's, or a duplicate.
    pub fn register(
        &mut self,
        id: &str,
        version: &str,
        summary: &str,
        factory: AnyFactory,
    ) -> Result<&mut Self, RegistryError> {
        let source = self.current_source.clone();
        self.register_shared(id, version, summary, &source, factory.into())
    }

    /// Registers one component whose factory may hold state, naming its `source` (for an
    /// external component, the path of its library).
    ///
    /// # Errors
    /// A malformed id, an id whose kind differs from the factory's, or a duplicate.
    pub fn register_shared(
        &mut self,
        id: &str,
        version: &str,
        summary: &str,
        source: &str,
        factory: AnySharedFactory,
    ) -> Result<&mut Self, RegistryError> {
        let parsed = ComponentId::parse(id).map_err(|reason| RegistryError::InvalidId {
            id: id.to_owned(),
            reason,
        })?;
        if parsed.kind() != factory.kind() {
            return Err(RegistryError::InvalidId {
                id: id.to_owned(),
                reason: format!("a {} factory was registered under this id", factory.kind()),
            });
        }
        if let Some(e) = self.entries.get(id) {
            return Err(RegistryError::Duplicate {
                id: id.to_owned(),
                first: e.info.source.clone(),
                second: source.to_owned(),
            });
        }
        self.entries.insert(
            id.to_owned(),
            Entry {
                info: ComponentInfo {
                    id: id.to_owned(),
                    kind: parsed.kind().to_string(),
                    version: version.to_owned(),
                    source: source.to_owned(),
                    summary: summary.to_owned(),
                },
                factory,
            },
        );
        Ok(self)
    }

    /// Freezes the registry.
    pub fn build(self) -> Registry {
        Registry {
            entries: self.entries,
        }
    }
}

/// The frozen registry.
pub struct Registry {
    entries: BTreeMap<String, Entry>,
}

impl Registry {
    /// Every component, sorted by id.
    pub fn components(&self) -> Vec<ComponentInfo> {
        self.entries.values().map(|e| e.info.clone()).collect()
    }

    /// Looks up `id` expecting `kind`. Accepts a bare name (`lape`) as `kind/name`.
    ///
    /// # Errors
    /// [`RegistryError::Unknown`] with a suggestion and the list of that kind's ids.
    pub fn lookup(
        &self,
        kind: Kind,
        id: &str,
    ) -> Result<(&ComponentInfo, AnySharedFactory), RegistryError> {
        let full = if id.contains('/') {
            id.to_owned()
        } else {
            format!("{kind}/{id}")
        };
        if let Some(e) = self.entries.get(&full)
            && e.factory.kind() == kind
        {
            return Ok((&e.info, e.factory.clone()));
        }
        let of_kind: Vec<&str> = self
            .entries
            .values()
            .filter(|e| e.factory.kind() == kind)
            .map(|e| e.info.id.as_str())
            .collect();
        let name = full.split_once('/').map_or(full.as_str(), |(_, n)| n);
        let suggestion = of_kind
            .iter()
            .map(|cand| (edit_distance(&full, cand), *cand))
            .filter(|(d, cand)| *d <= 2.max(cand.len() / 3))
            .min()
            .map(|(_, c)| format!(" (did you mean \"{c}\"?)"))
            .unwrap_or_default();
        Err(RegistryError::Unknown {
            kind: kind.to_string(),
            name: name.to_owned(),
            suggestion,
            available: if of_kind.is_empty() {
                "none".to_owned()
            } else {
                of_kind.join(", ")
            },
        })
    }

    /// Builds the backend loader `id` from `params`.
    ///
    /// # Errors
    /// Unknown id (as a message) or bad params.
    pub fn backend(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn BackendLoader>, ConfigError> {
        match self.lookup(Kind::Backend, id).map_err(unknown)?.1 {
            AnySharedFactory::Backend(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }

    /// Builds the dataset `id` from `params`.
    ///
    /// # Errors
    /// Unknown id or bad params.
    pub fn dataset(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn Dataset>, ConfigError> {
        match self.lookup(Kind::Dataset, id).map_err(unknown)?.1 {
            AnySharedFactory::Dataset(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }

    /// Builds the scorer `id` from `params`.
    ///
    /// # Errors
    /// Unknown id or bad params.
    pub fn scorer(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn Scorer>, ConfigError> {
        match self.lookup(Kind::Scorer, id).map_err(unknown)?.1 {
            AnySharedFactory::Scorer(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }

    /// Builds the intervention `id` from `params`.
    ///
    /// # Errors
    /// Unknown id or bad params.
    pub fn intervention(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn Intervention>, ConfigError> {
        match self.lookup(Kind::Intervention, id).map_err(unknown)?.1 {
            AnySharedFactory::Intervention(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }

    /// Builds the evaluator `id` from `params`.
    ///
    /// # Errors
    /// Unknown id or bad params.
    pub fn evaluator(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn Evaluator>, ConfigError> {
        match self.lookup(Kind::Evaluator, id).map_err(unknown)?.1 {
            AnySharedFactory::Evaluator(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }

    /// Builds the reporter `id` from `params`.
    ///
    /// # Errors
    /// Unknown id or bad params.
    pub fn reporter(
        &self,
        id: &str,
        params: &serde_json::Value,
        cx: &FactoryContext,
    ) -> Result<Box<dyn Reporter>, ConfigError> {
        match self.lookup(Kind::Reporter, id).map_err(unknown)?.1 {
            AnySharedFactory::Reporter(f) => f(params, cx),
            _ => unreachable!("lookup checked the kind"),
        }
    }
}

fn unknown(e: RegistryError) -> ConfigError {
    ConfigError::new(None, e.to_string())
}

/// Levenshtein distance over chars (for "did you mean").
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActivationStats, ComponentError, NeuronSet, ScoreOutput};

    struct Nothing;
    impl Scorer for Nothing {
        fn score(&self, s: &ActivationStats, l: &[String]) -> Result<ScoreOutput, ComponentError> {
            Ok(ScoreOutput {
                sets: l
                    .iter()
                    .map(|x| (x.clone(), NeuronSet::empty(s.n_layers)))
                    .collect(),
                details: serde_json::Value::Null,
            })
        }
    }
    fn make(_: &serde_json::Value, _: &FactoryContext) -> Result<Box<dyn Scorer>, ConfigError> {
        Ok(Box::new(Nothing))
    }
    struct P(&'static str);
    impl Plugin for P {
        fn name(&self) -> &'static str {
            self.0
        }
        fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
            r.register("scorer/lape", "1.0.0", "entropy", AnyFactory::Scorer(make))?;
            Ok(())
        }
    }

    #[test]
    fn rejects_unknown_scorer_with_suggestion() {
        let mut b = RegistryBuilder::new();
        b.add_plugin(&P("a")).unwrap();
        let r = b.build();
        let e = r.lookup(Kind::Scorer, "scorer/lapee").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown scorer \"lapee\" (did you mean \"scorer/lape\"?); available: scorer/lape"
        );
        assert!(r.lookup(Kind::Scorer, "lape").is_ok());
        let e = r.lookup(Kind::Reporter, "reporter/json").unwrap_err();
        assert_eq!(e.to_string(), "unknown reporter \"json\"; available: none");
    }

    #[test]
    fn duplicate_ids_name_both_sources() {
        let mut b = RegistryBuilder::new();
        b.add_plugin(&P("first")).unwrap();
        let e = b.add_plugin(&P("second")).err().unwrap();
        assert_eq!(
            e.to_string(),
            "component scorer/lape is registered twice: by first and by second"
        );
    }

    #[test]
    fn shared_factories_keep_state_and_name_their_source() {
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let factory: SharedFactory<dyn Scorer> = Arc::new(move |p, cx| {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            make(p, cx)
        });
        let mut b = RegistryBuilder::new();
        b.add_plugin(&P("valex-scorers")).unwrap();
        b.register_shared(
            "scorer/smd",
            "0.1.0",
            "external",
            "plugins/libx.so",
            AnySharedFactory::Scorer(factory.clone()),
        )
        .unwrap();
        let e = b
            .register_shared(
                "scorer/lape",
                "9",
                "",
                "plugins/liby.so",
                AnySharedFactory::Scorer(factory),
            )
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "component scorer/lape is registered twice: by valex-scorers and by plugins/liby.so"
        );
        let r = b.build();
        let (info, f) = r.lookup(Kind::Scorer, "smd").unwrap();
        assert_eq!(info.source, "plugins/libx.so");
        assert_eq!(f.kind(), Kind::Scorer);
        r.scorer(
            "scorer/smd",
            &serde_json::Value::Null,
            &FactoryContext::default(),
        )
        .unwrap();
        r.scorer(
            "scorer/lape",
            &serde_json::Value::Null,
            &FactoryContext::default(),
        )
        .unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn kind_must_match_factory() {
        let mut b = RegistryBuilder::new();
        let e = b
            .register("reporter/x", "1", "", AnyFactory::Scorer(make))
            .err()
            .unwrap();
        assert!(matches!(e, RegistryError::InvalidId { .. }));
    }
}
