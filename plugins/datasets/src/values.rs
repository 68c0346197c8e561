//! The 12 core social values, re-exported from valex-core, and the helpers readers use to
//! name them in messages.

pub use valex_core::dataset::{CORE_VALUES, CoreValue, core_value};

/// The simplified names of every core value, space separated (for error messages).
pub(crate) fn core_value_list() -> String {
    CORE_VALUES
        .iter()
        .map(|v| v.zh)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::Language;
    use valex_core::dataset::value_name;

    #[test]
    fn names_and_slugs_are_unique_and_traditional_spellings_resolve() {
        let mut zh: Vec<_> = CORE_VALUES.iter().map(|v| v.zh).collect();
        let mut slugs: Vec<_> = CORE_VALUES.iter().map(|v| v.slug).collect();
        zh.sort_unstable();
        zh.dedup();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!((zh.len(), slugs.len()), (12, 12));
        assert_eq!(core_value("富強").map(|v| v.zh), Some("富强"));
        assert_eq!(core_value("敬業").map(|v| v.slug), Some("dedication"));
        assert_eq!(core_value("和平"), None);
        assert_eq!(value_name("法治", Language::En), "Rule of Law");
        assert_eq!(value_name("法治", Language::Zh), "法治");
        assert_eq!(value_name("勇气", Language::En), "勇气");
        assert_eq!(core_value_list().split(' ').count(), 12);
    }
}
