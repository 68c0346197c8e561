//! [`ScorersPlugin`]: registers every scorer of this crate with the valex registry.
//!
//! This module owns only the ids, versions and summaries; each scorer lives in its own module.

use valex_core::{AnyFactory, Plugin, RegistryBuilder, RegistryError};

use crate::lape::lape_factory;

/// The built-in scorers (`scorer/lape`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ScorersPlugin;

impl Plugin for ScorersPlugin {
    fn name(&self) -> &'static str {
        "valex-scorers"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "scorer/lape",
            env!("CARGO_PKG_VERSION"),
            "LAPE/VAPE: lowest activation-probability entropy across labels (Tang et al. 2024)",
            AnyFactory::Scorer(lape_factory),
        )?;
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
