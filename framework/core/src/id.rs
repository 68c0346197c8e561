//! Component ids of the form `kind/name` (lowercase kebab-case), e.g. `scorer/lape`.

use std::fmt;

/// The kinds of component a manifest can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// A model backend (`backend/candle`).
    Backend,
    /// A dataset reader (`dataset/jsonl`).
    Dataset,
    /// A neuron scorer (`scorer/lape`).
    Scorer,
    /// An intervention on neuron activations (`intervention/zero`).
    Intervention,
    /// A behaviour evaluator (`evaluator/forced-choice`).
    Evaluator,
    /// A reporter writing result files (`reporter/json`).
    Reporter,
}

impl Kind {
    /// Every kind, in display order.
    pub const ALL: [Kind; 6] = [
        Kind::Backend,
        Kind::Dataset,
        Kind::Scorer,
        Kind::Intervention,
        Kind::Evaluator,
        Kind::Reporter,
    ];

    /// The id prefix of this kind (`backend`, `scorer`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Backend => "backend",
            Kind::Dataset => "dataset",
            Kind::Scorer => "scorer",
            Kind::Intervention => "intervention",
            Kind::Evaluator => "evaluator",
            Kind::Reporter => "reporter",
        }
    }

    /// Parses an id prefix.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A component id: `kind/name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ComponentId {
    kind: Kind,
    name: String,
}

impl ComponentId {
    /// Builds an id, checking that `name` is lowercase kebab-case.
    ///
    /// # Errors
    /// Returns a message when the name is empty or has characters other than `a-z0-9-`.
    pub fn new(kind: Kind, name: &str) -> Result<Self, String> {
        let ok = !name.is_empty()
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(ComponentId {
                kind,
                name: name.to_owned(),
            })
        } else {
            Err(format!(
                "component name \"{name}\" must be lowercase kebab-case (a-z, 0-9, -)"
            ))
        }
    }

    /// Parses `kind/name`.
    ///
    /// # Errors
    /// Returns a message naming what is wrong with `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some((kind, name)) = s.split_once('/') else {
            return Err(format!("component id \"{s}\" must have the form kind/name"));
        };
        let Some(kind) = Kind::parse(kind) else {
            let kinds: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(format!(
                "unknown component kind \"{kind}\" in \"{s}\"; kinds: {}",
                kinds.join(", ")
            ));
        };
        ComponentId::new(kind, name)
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The name after the slash.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for ComponentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_ids() {
        let id = ComponentId::parse("scorer/lape").unwrap();
        assert_eq!(id.kind(), Kind::Scorer);
        assert_eq!(id.name(), "lape");
        assert_eq!(id.to_string(), "scorer/lape");
    }

    #[test]
    fn rejects_malformed_ids() {
        assert!(ComponentId::parse("lape").is_err());
        assert!(ComponentId::parse("scorers/lape").is_err());
        assert!(ComponentId::parse("scorer/Lape").is_err());
        assert!(ComponentId::parse("scorer/").is_err());
    }
}
