//! The schema check: walks the merged value tree against the known key tree and reports
//! EVERY problem at once (serde's `deny_unknown_fields` stops at the first one).
//!
//! It reports unknown keys (with "did you mean"), wrong types, missing required keys,
//! invalid values (name pattern, allowed words, ranges, template placeholders) and
//! cross-section rules, each with the origin of the offending value. It does not know the
//! registry: component ids and params are checked in `plan.rs`. The key tree here and the
//! structs in `raw.rs` describe the same schema; the tests load manifests through both.

use figment::value::Value;

use crate::convert::{as_integer, describe};
use crate::error::{ManifestError, ManifestErrorKind as K};
use crate::files::version_error;
use crate::load::{Origins, child};
use crate::raw::{EDIT_POSITIONS, GroupBy, LabelBy, Positions, is_reserved_condition_name};
use crate::template::parse_template;

/// The type (and rules) of one key.
#[derive(Clone, Copy)]
enum Ty {
    /// Any string.
    Str,
    /// An experiment name: `[A-Za-z0-9_.-]+`.
    Name,
    /// A non-negative integer of at least `min`.
    Count { min: u64 },
    /// `true` or `false`.
    Bool,
    /// A number (integer or float) greater than 0.
    Positive,
    /// One of the listed strings.
    OneOf(&'static [&'static str]),
    /// A non-empty array of distinct `zh` / `en`.
    Languages,
    /// A record template string.
    Template,
    /// An opaque table handed to a component.
    Params,
    /// A table with known keys.
    Table(&'static [Field]),
    /// An array of component tables.
    Components,
    /// An array of `[[plugins]]` tables.
    Plugins,
    /// An array of `[[evaluate.conditions]]` tables (unique, unreserved names).
    Conditions,
    /// An array of `[[record.conditions]]` tables (unique names).
    RecordConditions,
    /// `schema_version`.
    Version,
}

struct Field {
    name: &'static str,
    ty: Ty,
    required: bool,
    /// An example value shown when the key is missing.
    example: Option<&'static str>,
}

const fn req(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
        example: None,
    }
}

/// A required key whose value the user must choose (no default exists).
const fn req_eg(name: &'static str, ty: Ty, example: &'static str) -> Field {
    Field {
        name,
        ty,
        required: true,
        example: Some(example),
    }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
        example: None,
    }
}

const LANGUAGES: [&str; 2] = ["zh", "en"];

const EXPERIMENT: &[Field] = &[
    req_eg("name", Ty::Name, "\"value-study-demo\""),
    req("seed", Ty::Count { min: 0 }),
    opt("description", Ty::Str),
];
const MODEL: &[Field] = &[
    req_eg("backend", Ty::Str, "\"backend/candle\""),
    opt("path", Ty::Str),
    opt("params", Ty::Params),
    opt("reference", Ty::Table(MODEL_REFERENCE)),
];
const MODEL_REFERENCE: &[Field] = &[
    req_eg("backend", Ty::Str, "\"backend/ort\""),
    opt("path", Ty::Str),
    opt("params", Ty::Params),
];
const DATASET: &[Field] = &[
    req_eg("use", Ty::Str, "\"dataset/jsonl\""),
    opt("params", Ty::Params),
];
const SCORE: &[Field] = &[
    req_eg("use", Ty::Str, "\"scorer/lape\""),
    opt("params", Ty::Params),
    opt("group_by", Ty::OneOf(&GroupBy::NAMES)),
];
const INTERVENTION: &[Field] = &[
    req_eg("use", Ty::Str, "\"intervention/zero\""),
    opt("params", Ty::Params),
    opt("positions", Ty::OneOf(&EDIT_POSITIONS)),
];
const REPORTER: &[Field] = &[
    req_eg("use", Ty::Str, "\"reporter/json\""),
    opt("params", Ty::Params),
];
const PLUGIN: &[Field] = &[
    req_eg("path", Ty::Str, "\"../../target/release/libmy_plugin.so\""),
    opt("call_timeout_secs", Ty::Count { min: 1 }),
];
const TEMPLATE: &[Field] = &[req("zh", Ty::Template), req("en", Ty::Template)];
const TEMPLATE_FILE: &[Field] = &[opt("zh", Ty::Str), opt("en", Ty::Str)];
const RECORD: &[Field] = &[
    req("tap", Ty::Str),
    req("positions", Ty::OneOf(&Positions::NAMES)),
    req("label_by", Ty::OneOf(&LabelBy::NAMES)),
    req("languages", Ty::Languages),
    req("batch_size", Ty::Count { min: 1 }),
    req("max_items_per_label", Ty::Count { min: 0 }),
    req("template", Ty::Table(TEMPLATE)),
    opt("template_file", Ty::Table(TEMPLATE_FILE)),
    opt("conditions", Ty::RecordConditions),
    opt("max_new_tokens", Ty::Count { min: 1 }),
    opt("bootstrap", Ty::Count { min: 0 }),
    opt("keep_item_means", Ty::Bool),
    opt("self_check", Ty::Bool),
    opt("self_check_tolerance", Ty::Positive),
    opt("checkpoint_every", Ty::Count { min: 0 }),
];
const RECORD_CONDITION: &[Field] = &[
    req_eg("name", Ty::Name, "\"support\""),
    req("template", Ty::Table(TEMPLATE)),
    opt("template_file", Ty::Table(TEMPLATE_FILE)),
];
const EVALUATE: &[Field] = &[
    req_eg("use", Ty::Str, "\"evaluator/forced-choice\""),
    opt("params", Ty::Params),
    req("languages", Ty::Languages),
    req("max_items_per_value", Ty::Count { min: 0 }),
    req("random_controls", Ty::Count { min: 0 }),
    opt("cross_value", Ty::Bool),
    req("bootstrap", Ty::Count { min: 0 }),
    req("permutations", Ty::Count { min: 0 }),
    opt("conditions", Ty::Conditions),
    opt("neutral_text", Ty::Table(NEUTRAL_TEXT)),
];
const NEUTRAL_TEXT: &[Field] = &[opt("zh", Ty::Str), opt("en", Ty::Str)];
const CONDITION: &[Field] = &[
    req_eg("name", Ty::Name, "\"scale-5\""),
    req_eg("use", Ty::Str, "\"intervention/scale\""),
    opt("params", Ty::Params),
    opt("positions", Ty::OneOf(&EDIT_POSITIONS)),
];
const TOP: &[Field] = &[
    opt("schema_version", Ty::Version),
    req("experiment", Ty::Table(EXPERIMENT)),
    req("model", Ty::Table(MODEL)),
    req("dataset", Ty::Table(DATASET)),
    opt("record", Ty::Table(RECORD)),
    opt("score", Ty::Table(SCORE)),
    req("intervention", Ty::Table(INTERVENTION)),
    opt("evaluate", Ty::Table(EVALUATE)),
    req("reporters", Ty::Components),
    opt("plugins", Ty::Plugins),
];

/// Checks the merged tree; returns every problem in schema order.
pub(crate) fn check(root: &Value, origins: &Origins) -> Vec<ManifestError> {
    let mut w = Walker {
        origins,
        errors: Vec::new(),
    };
    w.table("", root, TOP);
    if let Some(d) = root.as_dict() {
        let rules = [
            (
                "score",
                "record",
                "[score] needs a [record] section (the scorer reads the recorded statistics)",
            ),
            (
                "evaluate",
                "score",
                "[evaluate] needs a [score] section (it evaluates the neuron sets the scorer selects)",
            ),
        ];
        for (section, needs, message) in rules {
            if d.contains_key(section) && !d.contains_key(needs) {
                let origin = origins
                    .get(&child(section, "use"))
                    .or_else(|| origins.get(section));
                w.errors.push(
                    ManifestError::new(K::Rule, message)
                        .at(section)
                        .from_origin(origin),
                );
            }
        }
    }
    record_condition_rules(root, origins, &mut w.errors);
    let by_language = root
        .find_ref("record.label_by")
        .and_then(Value::as_str)
        .is_some_and(|b| b == "language");
    let cross = root
        .find_ref("evaluate.cross_value")
        .and_then(Value::to_bool)
        .unwrap_or(false);
    if by_language && cross {
        let key = "evaluate.cross_value";
        w.errors.push(
            ManifestError::new(
                K::Rule,
                "the cross-value matrix compares values' sets, but record.label_by = \"language\" selects one set per language; set cross_value = false (each value is still evaluated with its language's set, and neutral_text shows every language's set on every language)",
            )
            .at(key)
            .from_origin(origins.get(key)),
        );
    }
    w.errors
}

/// `label_by = "value-condition"` and `[[record.conditions]]` go together: one without the
/// other is an error at the key that is there.
fn record_condition_rules(root: &Value, origins: &Origins, errors: &mut Vec<ManifestError>) {
    let Some(record) = root.find_ref("record") else {
        return;
    };
    let by_condition = record
        .find_ref("label_by")
        .and_then(Value::as_str)
        .is_some_and(|b| b == "value-condition");
    let n_conditions = record
        .find_ref("conditions")
        .and_then(Value::as_array)
        .map(<[Value]>::len);
    let (key, message) = match (by_condition, n_conditions) {
        (true, None | Some(0)) => (
            "record.label_by",
            "label_by = \"value-condition\" records each item once per [[record.conditions]] entry, but none is given (e.g. [[record.conditions]] name = \"support\" with template_file = { zh = \"...\", en = \"...\" })",
        ),
        (false, Some(_)) => (
            "record.conditions",
            "[[record.conditions]] are recorded only with label_by = \"value-condition\" (labels <value>/<condition>); set record.label_by = \"value-condition\" or remove the conditions",
        ),
        _ => return,
    };
    errors.push(
        ManifestError::new(K::Rule, message)
            .at(key)
            .from_origin(origins.get(key)),
    );
}

struct Walker<'a> {
    origins: &'a Origins,
    errors: Vec<ManifestError>,
}

impl Walker<'_> {
    fn push(&mut self, kind: K, key: &str, message: impl Into<String>) {
        let e = ManifestError::new(kind, message)
            .at(key)
            .from_origin(self.origins.get(key));
        self.errors.push(e);
    }

    fn wrong_type(&mut self, key: &str, expected: &str, found: &Value) {
        self.push(
            K::WrongType,
            key,
            format!("expected {expected}, found {}", describe(found)),
        );
    }

    fn table(&mut self, path: &str, v: &Value, fields: &[Field]) {
        let Some(d) = v.as_dict() else {
            return self.wrong_type(path, "a table", v);
        };
        for f in fields {
            let key = child(path, f.name);
            match d.get(f.name) {
                Some(v) => self.value(&key, v, f.ty),
                None if f.required => {
                    let msg = match (f.ty, f.example) {
                        (Ty::Table(_), _) => format!("missing required section [{key}]"),
                        (_, Some(eg)) => format!("missing required key (e.g. {} = {eg})", f.name),
                        _ => "missing required key".to_owned(),
                    };
                    self.errors
                        .push(ManifestError::new(K::MissingKey, msg).at(key));
                }
                None => {}
            }
        }
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        for k in d.keys() {
            if path.is_empty() && k == "include" {
                self.push(
                    K::UnknownKey,
                    k,
                    "include is read from manifest files only, not from --set or VALEX_* variables",
                );
            } else if !names.contains(&k.as_str()) {
                let hint = suggest(k, &names)
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                self.push(
                    K::UnknownKey,
                    &child(path, k),
                    format!(
                        "unknown key \"{k}\"{hint}; known keys here: {}",
                        names.join(", ")
                    ),
                );
            }
        }
    }

    fn value(&mut self, key: &str, v: &Value, ty: Ty) {
        match ty {
            Ty::Str => {
                if v.as_str().is_none() {
                    self.wrong_type(key, "a string", v);
                }
            }
            Ty::Name => match v.as_str() {
                None => self.wrong_type(key, "a string", v),
                Some(s) if !is_valid_name(s) => self.push(
                    K::InvalidValue,
                    key,
                    format!(
                        "invalid name {s:?}: use only letters A-Z a-z, digits, `_`, `.` and `-` (it names run directories)"
                    ),
                ),
                Some(_) => {}
            },
            Ty::Bool => {
                if v.to_bool().is_none() {
                    self.wrong_type(key, "true or false", v);
                }
            }
            Ty::Positive => match v.to_f64().or_else(|| v.to_i128().map(|i| i as f64)) {
                None => self.wrong_type(key, "a number", v),
                Some(x) if x.is_nan() || x <= 0.0 => {
                    self.push(K::InvalidValue, key, format!("must be greater than 0, found {x}"));
                }
                Some(_) => {}
            },
            Ty::Count { min } => match as_integer(v) {
                None => {
                    let what = if min == 0 {
                        "a non-negative integer".to_owned()
                    } else {
                        format!("an integer >= {min}")
                    };
                    self.wrong_type(key, &what, v);
                }
                Some(n) if n < i128::from(min) => {
                    let rule = if min == 0 {
                        "must not be negative".to_owned()
                    } else {
                        format!("must be at least {min}")
                    };
                    self.push(K::InvalidValue, key, format!("{rule}, found {n}"));
                }
                Some(_) => {}
            },
            Ty::OneOf(names) => self.one_of(key, v, names),
            Ty::Languages => self.languages(key, v),
            Ty::Template => match v.as_str() {
                None => self.wrong_type(key, "a template string", v),
                Some(s) => {
                    if let Err(e) = parse_template(s) {
                        self.push(K::InvalidValue, key, e.to_string());
                    }
                }
            },
            Ty::Params => {
                if v.as_dict().is_none() {
                    self.wrong_type(key, "a table of component params", v);
                } else {
                    self.finite_floats(key, v);
                }
            }
            Ty::Table(fields) => self.table(key, v, fields),
            Ty::Components => match v.as_array() {
                None => self.wrong_type(key, "an array of tables ([[reporters]])", v),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.table(&format!("{key}[{i}]"), item, REPORTER);
                    }
                }
            },
            Ty::Plugins => match v.as_array() {
                None => self.wrong_type(key, "an array of tables ([[plugins]])", v),
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.table(&format!("{key}[{i}]"), item, PLUGIN);
                    }
                }
            },
            Ty::Conditions => match v.as_array() {
                None => self.wrong_type(key, "an array of tables ([[evaluate.conditions]])", v),
                Some(items) => self.conditions(key, items),
            },
            Ty::RecordConditions => match v.as_array() {
                None => self.wrong_type(key, "an array of tables ([[record.conditions]])", v),
                Some(items) => self.record_conditions(key, items),
            },
            Ty::Version => {
                if let Some(e) = version_error(v) {
                    self.errors
                        .push(e.at(key).from_origin(self.origins.get(key)));
                }
            }
        }
    }

    fn conditions(&mut self, key: &str, items: &[Value]) {
        let mut seen: Vec<&str> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{key}[{i}]");
            self.table(&k, item, CONDITION);
            let Some(name) = item
                .as_dict()
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let nk = child(&k, "name");
            if is_reserved_condition_name(name) {
                self.push(
                    K::InvalidValue,
                    &nk,
                    format!(
                        "condition name {name:?} is reserved (targeted, baseline and random-<n> name the built-in conditions)"
                    ),
                );
            } else if seen.contains(&name) {
                self.push(
                    K::InvalidValue,
                    &nk,
                    format!("condition name {name:?} is used twice"),
                );
            }
            seen.push(name);
        }
    }

    fn record_conditions(&mut self, key: &str, items: &[Value]) {
        let mut seen: Vec<&str> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{key}[{i}]");
            self.table(&k, item, RECORD_CONDITION);
            if let Some(name) = item
                .as_dict()
                .and_then(|d| d.get("name"))
                .and_then(Value::as_str)
            {
                if seen.contains(&name) {
                    self.push(
                        K::InvalidValue,
                        &child(&k, "name"),
                        format!("record condition name {name:?} is used twice"),
                    );
                }
                seen.push(name);
            }
        }
    }

    fn one_of(&mut self, key: &str, v: &Value, names: &[&str]) {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        match v.as_str() {
            None => self.wrong_type(key, &format!("one of {}", quoted.join(", ")), v),
            Some(s) if !names.contains(&s) => {
                let hint = suggest(s, names)
                    .map(|n| format!(" (did you mean {n:?}?)"))
                    .unwrap_or_default();
                self.push(
                    K::InvalidValue,
                    key,
                    format!("expected one of {}, found {s:?}{hint}", quoted.join(", ")),
                );
            }
            Some(_) => {}
        }
    }

    fn languages(&mut self, key: &str, v: &Value) {
        let Some(items) = v.as_array() else {
            return self.wrong_type(key, "an array of languages (\"zh\", \"en\")", v);
        };
        if items.is_empty() {
            self.push(
                K::InvalidValue,
                key,
                "must name at least one language (\"zh\", \"en\")",
            );
        }
        let mut seen = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let k = format!("{key}[{i}]");
            self.one_of(&k, item, &LANGUAGES);
            if let Some(s) = item.as_str() {
                if seen.contains(&s) {
                    self.push(
                        K::InvalidValue,
                        &k,
                        format!("language {s:?} is listed twice"),
                    );
                }
                seen.push(s);
            }
        }
    }

    /// Params become JSON, which has no nan or infinity.
    fn finite_floats(&mut self, key: &str, v: &Value) {
        match v {
            Value::Num(_, n) if n.to_f64().is_some_and(|f| !f.is_finite()) => self.push(
                K::InvalidValue,
                key,
                "nan and infinite floats cannot be passed to components",
            ),
            Value::Dict(_, d) => {
                for (k, v) in d {
                    self.finite_floats(&child(key, k), v);
                }
            }
            Value::Array(_, a) => {
                for (i, v) in a.iter().enumerate() {
                    self.finite_floats(&format!("{key}[{i}]"), v);
                }
            }
            _ => {}
        }
    }
}

/// `[A-Za-z0-9_.-]+`.
pub(crate) fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The closest candidate within a small edit distance, if any.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.chars().count() / 3))
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
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

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(suggest("seeed", &["name", "seed"]), Some("seed"));
        assert_eq!(suggest("scroe", &["score", "record"]), Some("score"));
        assert_eq!(suggest("banana", &["name", "seed"]), None);
    }

    #[test]
    fn names_allow_only_run_directory_characters() {
        assert!(is_valid_name("value-study_demo.v2"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name(""));
    }
}
