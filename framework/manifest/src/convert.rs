//! Conversions between the value trees the loader meets: `toml` (files and `--set` values),
//! figment's tagged [`Value`] (layering and origins) and `serde_json` (typed schema and
//! component params). Also renders a value for error messages.

use figment::value::{Dict, Num, Tag, Value};

/// Converts a parsed TOML value into an untagged figment value (figment tags it when the
/// layer is merged).
pub(crate) fn toml_to_figment(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(Tag::Default, s),
        toml::Value::Integer(i) => Value::Num(Tag::Default, Num::I64(i)),
        toml::Value::Float(f) => Value::Num(Tag::Default, Num::F64(f)),
        toml::Value::Boolean(b) => Value::Bool(Tag::Default, b),
        toml::Value::Datetime(d) => Value::String(Tag::Default, d.to_string()),
        toml::Value::Array(a) => {
            Value::Array(Tag::Default, a.into_iter().map(toml_to_figment).collect())
        }
        toml::Value::Table(t) => Value::Dict(Tag::Default, table_to_dict(t)),
    }
}

/// Converts a TOML table into a figment dictionary.
pub(crate) fn table_to_dict(t: toml::Table) -> Dict {
    t.into_iter()
        .map(|(k, v)| (k, toml_to_figment(v)))
        .collect()
}

/// Converts a figment value into JSON. Non-finite floats (TOML `nan`, `inf`) become `null`;
/// the schema check reports them before this matters.
pub(crate) fn figment_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::String(_, s) => serde_json::Value::String(s.clone()),
        Value::Char(_, c) => serde_json::Value::String(c.to_string()),
        Value::Bool(_, b) => serde_json::Value::Bool(*b),
        Value::Num(_, n) => num_to_json(*n),
        Value::Empty(_, _) => serde_json::Value::Null,
        Value::Dict(_, d) => serde_json::Value::Object(
            d.iter()
                .map(|(k, v)| (k.clone(), figment_to_json(v)))
                .collect(),
        ),
        Value::Array(_, a) => serde_json::Value::Array(a.iter().map(figment_to_json).collect()),
    }
}

fn num_to_json(n: Num) -> serde_json::Value {
    if let Some(f) = n.to_f64() {
        return serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into);
    }
    if let Some(u) = n.to_u128() {
        return u64::try_from(u).map_or(serde_json::Value::Null, Into::into);
    }
    match n.to_i128().map(i64::try_from) {
        Some(Ok(i)) => i.into(),
        _ => serde_json::Value::Null,
    }
}

/// An integer value, if `v` is one (floats are not integers).
pub(crate) fn as_integer(v: &Value) -> Option<i128> {
    match v {
        Value::Num(_, n) if n.to_f64().is_none() => n
            .to_i128()
            .or_else(|| n.to_u128().and_then(|u| i128::try_from(u).ok())),
        _ => None,
    }
}

/// Describes a found value for messages: `string "abc"`, `integer 7`, `a table`.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::String(_, s) => {
            let shown: String = s.chars().take(40).collect();
            let ellipsis = if shown.len() < s.len() { "..." } else { "" };
            format!("string {shown:?}{ellipsis}")
        }
        Value::Char(_, c) => format!("string {:?}", c.to_string()),
        Value::Bool(_, b) => format!("boolean {b}"),
        Value::Num(_, n) => match n.to_f64() {
            Some(f) => format!("float {f}"),
            None => format!("integer {}", as_integer(v).unwrap_or_default()),
        },
        Value::Empty(_, _) => "nothing".to_owned(),
        Value::Dict(_, _) => "a table".to_owned(),
        Value::Array(_, _) => "an array".to_owned(),
    }
}

/// Parses an override value (`--set` or `VALEX_*`): a TOML value if `raw` is one (number,
/// boolean, quoted string, array, inline table), otherwise `raw` itself as a string.
pub(crate) fn parse_override_value(raw: &str) -> Value {
    let doc = format!("v = {raw}");
    if let Ok(mut table) = doc.parse::<toml::Table>()
        && table.len() == 1
        && let Some(v) = table.remove("v")
    {
        return toml_to_figment(v);
    }
    Value::String(Tag::Default, raw.to_owned())
}

/// The byte offset `at` in `text` as a 1-based (line, column), the column counted in chars.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_values_parse_as_toml_or_fall_back_to_strings() {
        assert_eq!(as_integer(&parse_override_value("7")), Some(7));
        assert_eq!(
            parse_override_value("\"x y\"").as_str(),
            Some("x y"),
            "quoted string"
        );
        assert_eq!(
            parse_override_value("plain words").as_str(),
            Some("plain words")
        );
        assert_eq!(parse_override_value("true").to_bool(), Some(true));
        let arr = figment_to_json(&parse_override_value("[\"zh\", \"en\"]"));
        assert_eq!(arr, serde_json::json!(["zh", "en"]));
        let table = figment_to_json(&parse_override_value("{ top_rate = 0.02 }"));
        assert_eq!(table, serde_json::json!({"top_rate": 0.02}));
        // A value that would smuggle a second key in is taken literally.
        assert_eq!(parse_override_value("1\nw = 2").as_str(), Some("1\nw = 2"));
    }

    #[test]
    fn line_col_counts_chars_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("理由\nx", 6), (1, 3));
    }

    #[test]
    fn describes_found_values() {
        assert_eq!(describe(&parse_override_value("abc")), "string \"abc\"");
        assert_eq!(describe(&parse_override_value("-3")), "integer -3");
        assert_eq!(describe(&parse_override_value("0.5")), "float 0.5");
        assert_eq!(describe(&parse_override_value("[1]")), "an array");
    }
}
