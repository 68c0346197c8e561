//! [`ScorersPlugin`]: registers every scorer of this crate with the valex registry.
//!
//! This module owns only the ids, versions and summaries; each scorer lives in its own module.

use valex_core::{AnyFactory, Plugin, RegistryBuilder, RegistryError};

use crate::act_prob_diff::act_prob_diff_factory;
use crate::auroc::auroc_factory;
use crate::lape::lape_factory;
use crate::mean_diff::mean_diff_factory;
use crate::welch_t::welch_factory;

/// The signature every built-in scorer factory has.
type ScorerFactory = valex_core::registry::Factory<dyn valex_core::Scorer>;

/// The built-in scorers: `scorer/lape`, `scorer/act-prob-diff`, `scorer/mean-diff`,
/// `scorer/welch-t`, `scorer/auroc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScorersPlugin;

impl Plugin for ScorersPlugin {
    fn name(&self) -> &'static str {
        "valex-scorers"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        let v = env!("CARGO_PKG_VERSION");
        let scorers: [(&str, &str, ScorerFactory); 5] = [
            (
                "scorer/lape",
                "LAPE/VAPE: lowest activation-probability entropy across labels (Tang et al. 2024)",
                lape_factory,
            ),
            (
                "scorer/act-prob-diff",
                "activation-probability difference, label vs other labels (NPTI lineage)",
                act_prob_diff_factory,
            ),
            (
                "scorer/mean-diff",
                "mean activation difference: raw, normalised, Cohen's d, Hedges' g, Glass's delta",
                mean_diff_factory,
            ),
            (
                "scorer/welch-t",
                "Welch t-test per neuron, item level, BH/Bonferroni/Holm corrected",
                welch_factory,
            ),
            (
                "scorer/auroc",
                "AUROC of item means, label vs other labels (exact ranks or binormal)",
                auroc_factory,
            ),
        ];
        for (id, summary, factory) in scorers {
            r.register(id, v, summary, AnyFactory::Scorer(factory))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::{FactoryContext, Kind};

    #[test]
    fn registers_lape_under_its_id() {
        let mut b = RegistryBuilder::new();
        b.add_plugin(&ScorersPlugin).expect("registers");
        let r = b.build();
        let (info, _) = r.lookup(Kind::Scorer, "lape").expect("lape is registered");
        assert_eq!(info.id, "scorer/lape");
        assert_eq!(info.source, "valex-scorers");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let cx = FactoryContext::default();
        assert!(r.scorer("scorer/lape", &serde_json::json!({}), &cx).is_ok());
        let e = r
            .scorer("scorer/lape", &serde_json::json!({"top_rate": 2.0}), &cx)
            .err()
            .expect("out of range");
        assert_eq!(e.key.as_deref(), Some("top_rate"));
    }
}
