//! Layering and precedence: defaults < includes < manifest < env < --set.

use std::path::PathBuf;

use valex_core::Language;

use super::{MINIMAL, load_ok, opts, with_files};
use crate::{LabelBy, Positions};

fn manifest(extra: &str) -> String {
    format!("schema_version = 1\n{extra}\n{MINIMAL}")
}

#[test]
fn each_layer_overrides_the_one_below_for_the_same_key() {
    let base = "[experiment]\nseed = 1\n";
    let top_with_include = format!(
        "schema_version = 1\ninclude = [\"../_base/b.toml\"]\n[experiment]\nname = \"demo\"\nseed = 2\n{}",
        MINIMAL.replace("[experiment]\nname = \"demo\"\n", "")
    );
    let include_only = manifest("include = [\"../_base/b.toml\"]");
    with_files(
        &[
            ("experiments/_base/b.toml", base),
            ("experiments/vs/defaults.toml", &manifest("")),
            ("experiments/vs/inc.toml", &include_only),
            ("experiments/vs/top.toml", &top_with_include),
        ],
        || {
            let seed = |path: &str, env: &[(&str, &str)], sets: &[&str]| {
                let l = load_ok(path, &opts(env, sets));
                let origin = l.origin("experiment.seed").unwrap().to_owned();
                (l.manifest.experiment.seed, origin)
            };
            assert_eq!(
                seed("experiments/vs/defaults.toml", &[], &[]),
                (0, "defaults".to_owned())
            );
            assert_eq!(
                seed("experiments/vs/inc.toml", &[], &[]),
                (1, "include experiments/_base/b.toml".to_owned())
            );
            assert_eq!(
                seed("experiments/vs/top.toml", &[], &[]),
                (2, "experiments/vs/top.toml".to_owned())
            );
            let env = [("VALEX_EXPERIMENT__SEED", "3")];
            assert_eq!(
                seed("experiments/vs/top.toml", &env, &[]),
                (3, "env VALEX_EXPERIMENT__SEED".to_owned())
            );
            assert_eq!(
                seed("experiments/vs/top.toml", &env, &["experiment.seed=4"]),
                (4, "flag --set experiment.seed=4".to_owned())
            );
        },
    );
}

#[test]
fn includes_resolve_relative_to_the_including_file_and_later_ones_win() {
    let x = manifest("include = [\"../_base/a.toml\", \"../_base/b.toml\"]\n[record]");
    let a = "include = [\"common/c.toml\"]\n[record]\ntap = \"a.tap\"\nbatch_size = 2\n";
    let b = "[record]\nbatch_size = 4\n";
    let c = "[record]\ntap = \"c.tap\"\nmax_items_per_label = 9\n[experiment]\ndescription = \"from c\"\n";
    with_files(
        &[
            ("experiments/vs/x.toml", &x),
            ("experiments/_base/a.toml", a),
            ("experiments/_base/b.toml", b),
            ("experiments/_base/common/c.toml", c),
        ],
        || {
            let l = load_ok("experiments/vs/x.toml", &opts(&[], &[]));
            let rec = l.manifest.record.as_ref().unwrap();
            assert_eq!(rec.tap, "a.tap", "the including file wins over its include");
            assert_eq!(
                rec.batch_size, 4,
                "a later include wins over an earlier one"
            );
            assert_eq!(
                rec.max_items_per_label, 9,
                "nested include relative to _base"
            );
            assert_eq!(l.manifest.experiment.description.as_deref(), Some("from c"));
            assert_eq!(
                l.files,
                [
                    "experiments/vs/x.toml",
                    "experiments/_base/a.toml",
                    "experiments/_base/common/c.toml",
                    "experiments/_base/b.toml",
                ]
                .map(PathBuf::from)
            );
            assert_eq!(
                l.origin("record.max_items_per_label"),
                Some("include experiments/_base/common/c.toml")
            );
            assert_eq!(l.base_dir, PathBuf::from("experiments/vs"));
            assert!(!l.resolved_toml.contains("include"), "{}", l.resolved_toml);
        },
    );
}

#[test]
fn arrays_replace_instead_of_concatenating() {
    let base = "[record]\nlanguages = [\"zh\", \"en\"]\n[[reporters]]\nuse = \"reporter/json\"\n";
    let x = manifest(
        "include = [\"base.toml\"]\n[record]\nlanguages = [\"en\"]\n[[reporters]]\nuse = \"reporter/csv\"\n",
    );
    with_files(&[("base.toml", base), ("x.toml", &x)], || {
        let l = load_ok("x.toml", &opts(&[], &[]));
        assert_eq!(l.manifest.record.unwrap().languages, [Language::En]);
        let ids: Vec<&str> = l.manifest.reporters.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["reporter/csv"]);
        let l = load_ok("x.toml", &opts(&[], &["record.languages=[\"zh\"]"]));
        assert_eq!(l.manifest.record.unwrap().languages, [Language::Zh]);
    });
}

#[test]
fn optional_sections_get_defaults_only_when_mentioned() {
    with_files(
        &[
            ("none.toml", &manifest("")),
            ("empty.toml", &format!("{}\n[record]\n", manifest(""))),
        ],
        || {
            let l = load_ok("none.toml", &opts(&[], &[]));
            assert!(l.manifest.record.is_none());
            assert!(l.manifest.score.is_none());
            assert!(l.manifest.evaluate.is_none());
            assert_eq!(l.manifest.intervention.id, "intervention/zero");
            assert_eq!(l.manifest.reporters.len(), 1);
            assert_eq!(l.manifest.reporters[0].id, "reporter/json");
            assert_eq!(l.origin("reporters[0].use"), Some("defaults"));

            let rec = load_ok("empty.toml", &opts(&[], &[]))
                .manifest
                .record
                .unwrap();
            assert_eq!(rec.tap, "mlp.gate_act");
            assert_eq!(rec.positions, Positions::Story);
            assert_eq!(rec.label_by, LabelBy::Value);
            assert_eq!(rec.languages, [Language::Zh, Language::En]);
            assert_eq!(rec.batch_size, 8);
            assert_eq!(rec.template.zh, "{story}\n理由：{rationale}");
            assert_eq!(rec.template.en, "{story}\nReason: {rationale}");

            // An env variable or flag mentioning a section also brings its defaults.
            let l = load_ok(
                "none.toml",
                &opts(
                    &[("VALEX_RECORD__BATCH_SIZE", "2")],
                    &["score.use=\"scorer/lape\""],
                ),
            );
            assert_eq!(l.manifest.record.unwrap().tap, "mlp.gate_act");
            assert_eq!(l.manifest.score.unwrap().id, "scorer/lape");
        },
    );
}

#[test]
fn env_reads_only_section_variables_and_nests_on_double_underscore() {
    with_files(
        &[(
            "x.toml",
            &manifest("[score]\nuse = \"scorer/lape\"\n[record]"),
        )],
        || {
            let env = [
                ("VALEX_LOG", "debug"),
                ("VALEX_SCORE__PARAMS__TOP_RATE", "0.02"),
                ("VALEX_EXPERIMENT__DESCRIPTION", "from env"),
                ("PATH", "/usr/bin"),
            ];
            let l = load_ok("x.toml", &opts(&env, &[]));
            let score = l.manifest.score.clone().unwrap();
            assert_eq!(score.params, serde_json::json!({"top_rate": 0.02}));
            assert_eq!(
                l.manifest.experiment.description.as_deref(),
                Some("from env")
            );
            assert_eq!(
                l.origin("score.params.top_rate"),
                Some("env VALEX_SCORE__PARAMS__TOP_RATE")
            );
        },
    );
}

#[test]
fn set_values_parse_as_toml_numbers_strings_arrays_and_tables() {
    with_files(
        &[(
            "x.toml",
            &manifest("[record]\n[score]\nuse = \"scorer/lape\""),
        )],
        || {
            let l = load_ok(
                "x.toml",
                &opts(
                    &[],
                    &[
                        "record.batch_size=16",
                        "experiment.description=plain words stay a string",
                        "experiment.name=\"quoted-name\"",
                        "evaluate.languages=[\"en\"]",
                        "evaluate.use=evaluator/forced-choice",
                        "score.params={ top_rate = 0.5, note = \"x\" }",
                    ],
                ),
            );
            let m = l.manifest;
            assert_eq!(m.record.unwrap().batch_size, 16);
            assert_eq!(
                m.experiment.description.as_deref(),
                Some("plain words stay a string")
            );
            assert_eq!(m.experiment.name, "quoted-name");
            let ev = m.evaluate.unwrap();
            assert_eq!(ev.languages, [Language::En]);
            assert_eq!(ev.id, "evaluator/forced-choice");
            assert_eq!(ev.random_controls, 1);
            assert_eq!(
                m.score.unwrap().params,
                serde_json::json!({"note": "x", "top_rate": 0.5})
            );
        },
    );
}

#[test]
fn resolved_toml_loads_back_to_the_same_manifest() {
    let x = manifest(
        "[record]\npositions = \"story+rationale\"\n[score]\nuse = \"scorer/lape\"\nparams = { top_rate = 0.02 }\n[evaluate]\nuse = \"evaluator/forced-choice\"",
    );
    with_files(&[("x.toml", &x)], || {
        let l = load_ok("x.toml", &opts(&[], &["experiment.seed=7"]));
        std::fs::write("resolved.toml", &l.resolved_toml).unwrap();
        let again = load_ok("resolved.toml", &opts(&[], &[]));
        assert_eq!(again.manifest, l.manifest);
        assert_eq!(again.resolved_toml, l.resolved_toml);
        assert!(
            l.resolved_toml.starts_with("schema_version = 1\n"),
            "{}",
            l.resolved_toml
        );
        insta::assert_snapshot!(l.resolved_toml);
    });
}

// Property test (issue #10 item 2): whatever subset of layers sets a key, and to whatever
// values, the highest layer that sets it wins (defaults < include < file < env < --set), and
// the key's origin names that layer.
mod later_layer_wins {
    use proptest::prelude::*;

    use super::super::{MINIMAL, load_ok, opts, with_files};

    /// `(key, env variable, default)`.
    const KEYS: [(&str, &str, u64); 3] = [
        ("experiment.seed", "VALEX_EXPERIMENT__SEED", 0),
        ("record.batch_size", "VALEX_RECORD__BATCH_SIZE", 8),
        (
            "record.max_items_per_label",
            "VALEX_RECORD__MAX_ITEMS_PER_LABEL",
            0,
        ),
    ];

    /// For each key, the value each layer sets (include, file, env, --set), if any.
    type Layers = [[Option<u64>; 4]; 3];

    fn toml_layer(layers: &Layers, layer: usize) -> String {
        let mut out = String::from("[record]\n");
        let mut experiment = String::new();
        for (k, (key, _, _)) in KEYS.iter().enumerate() {
            if let Some(v) = layers[k][layer] {
                let (section, name) = key.split_once('.').expect("dotted");
                let line = format!("{name} = {v}\n");
                if section == "experiment" {
                    experiment.push_str(&line);
                } else {
                    out.push_str(&line);
                }
            }
        }
        format!(
            "{out}{}",
            if experiment.is_empty() {
                String::new()
            } else {
                format!("[experiment]\n{experiment}")
            }
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn the_highest_layer_that_sets_a_key_wins(
            layers in prop::array::uniform3(prop::array::uniform4(prop::option::of(1_u64..1000)))
        ) {
            let include = toml_layer(&layers, 0);
            // The file's [experiment] keys join MINIMAL's section; its [record] keys follow.
            let (mut record_part, mut experiment_part) = (String::from("[record]\n"), String::new());
            let mut in_experiment = false;
            for line in toml_layer(&layers, 1).lines() {
                match line {
                    "[experiment]" => in_experiment = true,
                    "[record]" => in_experiment = false,
                    l if in_experiment => experiment_part.push_str(&format!("{l}\n")),
                    l => record_part.push_str(&format!("{l}\n")),
                }
            }
            let body = MINIMAL.replace(
                "[experiment]\nname = \"demo\"\n",
                &format!("[experiment]\nname = \"demo\"\n{experiment_part}"),
            );
            let file = format!("schema_version = 1\ninclude = [\"inc.toml\"]\n{body}\n{record_part}");
            let env: Vec<(String, String)> = KEYS
                .iter()
                .enumerate()
                .filter_map(|(k, (_, var, _))| layers[k][2].map(|v| ((*var).to_owned(), v.to_string())))
                .collect();
            let sets: Vec<String> = KEYS
                .iter()
                .enumerate()
                .filter_map(|(k, (key, _, _))| layers[k][3].map(|v| format!("{key}={v}")))
                .collect();
            let env_refs: Vec<(&str, &str)> = env.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            let set_refs: Vec<&str> = sets.iter().map(String::as_str).collect();
            let mut failure = None;
            with_files(&[("inc.toml", &include), ("m.toml", &file)], || {
                let loaded = load_ok("m.toml", &opts(&env_refs, &set_refs));
                let m = &loaded.manifest;
                let rec = m.record.as_ref().expect("[record] is mentioned");
                let got = [m.experiment.seed, rec.batch_size as u64, rec.max_items_per_label as u64];
                for (k, (key, var, default)) in KEYS.iter().enumerate() {
                    let winner = (0..4).rev().find(|&l| layers[k][l].is_some());
                    let want = winner.map_or(*default, |l| layers[k][l].expect("set"));
                    let origin = loaded.origin(key).unwrap_or("").to_owned();
                    let want_origin = match winner {
                        None => "defaults".to_owned(),
                        Some(0) => "include inc.toml".to_owned(),
                        Some(1) => "m.toml".to_owned(),
                        Some(2) => format!("env {var}"),
                        Some(_) => format!("flag --set {key}={want}"),
                    };
                    if got[k] != want || origin != want_origin {
                        failure = Some(format!("{key}: got {} from {origin:?}, want {want} from {want_origin:?}", got[k]));
                    }
                }
            });
            prop_assert!(failure.is_none(), "{}", failure.unwrap_or_default());
        }
    }
}

#[test]
fn model_path_is_shorthand_for_model_params_path_and_wins_over_it() {
    with_files(&[("experiments/vs/m.toml", &manifest(""))], || {
        let l = load_ok("experiments/vs/m.toml", &opts(&[], &[]));
        assert_eq!(l.manifest.model.params["path"], "m");

        let flag = "model.path=/models/Qwen2.5-7B-Instruct";
        let l = load_ok("experiments/vs/m.toml", &opts(&[], &[flag]));
        assert_eq!(
            l.manifest.model.params["path"],
            "/models/Qwen2.5-7B-Instruct"
        );
        assert_eq!(
            l.origin("model.params.path"),
            Some("flag --set model.path=/models/Qwen2.5-7B-Instruct")
        );
        // The resolved manifest holds the long form only.
        let resolved: toml::Value = toml::from_str(&l.resolved_toml).unwrap();
        assert_eq!(
            resolved["model"]["params"]["path"].as_str(),
            Some("/models/Qwen2.5-7B-Instruct")
        );
        assert!(
            resolved["model"].get("path").is_none(),
            "{}",
            l.resolved_toml
        );

        let env = [("VALEX_MODEL__PATH", "/models/env")];
        let l = load_ok("experiments/vs/m.toml", &opts(&env, &[]));
        assert_eq!(l.manifest.model.params["path"], "/models/env");
    });
}
