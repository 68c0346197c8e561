//! Every validation error path of `load`, as snapshots of the exact lines users see.

use super::{MINIMAL, load_err, opts, with_files};

fn manifest(extra: &str) -> String {
    format!("schema_version = 1\n{extra}\n{MINIMAL}")
}

#[test]
fn unknown_keys_top_level_and_nested_name_their_origin() {
    let base = "[record]\ntapp = \"mlp.gate_act\"\n";
    let x = "schema_version = 1\ninclude = [\"base.toml\"]\n[experiment]\nname = \"demo\"\nseeed = 3\n[model]\nbackend = \"backend/dummy\"\n[dataset]\nuse = \"dataset/jsonl\"\n[scroe]\nuse = \"scorer/lape\"\n";
    with_files(&[("base.toml", base), ("x.toml", x)], || {
        let out = load_err("x.toml", &opts(&[], &["model.parms.x=1"]));
        insta::assert_snapshot!(out, @r#"
            x.toml: experiment.seeed (from x.toml): unknown key "seeed" (did you mean "seed"?); known keys here: name, seed, description
            x.toml: model.parms (from flag --set model.parms.x=1): unknown key "parms" (did you mean "params"?); known keys here: backend, path, params, reference
            x.toml: record.tapp (from include base.toml): unknown key "tapp" (did you mean "tap"?); known keys here: tap, positions, label_by, languages, batch_size, max_items_per_label, template, template_file, conditions, max_new_tokens, bootstrap, keep_item_means, self_check, self_check_tolerance, checkpoint_every
            x.toml: scroe (from x.toml): unknown key "scroe" (did you mean "score"?); known keys here: schema_version, experiment, model, dataset, record, score, intervention, evaluate, reporters, plugins
            "#);
    });
}

#[test]
fn wrong_types_show_expected_and_found() {
    let x = manifest(
        "[record]\nbatch_size = \"eight\"\nlanguages = \"zh\"\n[score]\nuse = 5\nparams = 0.1",
    );
    with_files(&[("x.toml", &x)], || {
        let out = load_err("x.toml", &opts(&[("VALEX_EXPERIMENT__SEED", "abc")], &[]));
        insta::assert_snapshot!(out, @r#"
            x.toml: experiment.seed (from env VALEX_EXPERIMENT__SEED): expected a non-negative integer, found string "abc"
            x.toml: record.languages (from x.toml): expected an array of languages ("zh", "en"), found string "zh"
            x.toml: record.batch_size (from x.toml): expected an integer >= 1, found string "eight"
            x.toml: score.use (from x.toml): expected a string, found integer 5
            x.toml: score.params (from x.toml): expected a table of component params, found float 0.1
            "#);
    });
}

#[test]
fn missing_required_keys_and_sections_are_listed() {
    let x = "schema_version = 1\n[experiment]\nseed = 1\n[dataset]\nparams = {}\n[[reporters]]\nparams = {}\n";
    with_files(&[("x.toml", x)], || {
        insta::assert_snapshot!(load_err("x.toml", &opts(&[], &[])), @r#"
            x.toml: experiment.name: missing required key (e.g. name = "value-study-demo")
            x.toml: model.backend: missing required key (e.g. backend = "backend/candle")
            x.toml: dataset.use: missing required key (e.g. use = "dataset/jsonl")
            x.toml: reporters[0].use: missing required key (e.g. use = "reporter/json")
            "#);
    });
}

#[test]
fn schema_version_must_be_present_and_supported() {
    with_files(
        &[
            ("missing.toml", MINIMAL),
            ("two.toml", &format!("schema_version = 2\n{MINIMAL}")),
            ("text.toml", &format!("schema_version = \"1\"\n{MINIMAL}")),
            ("inc.toml", &manifest("include = [\"future.toml\"]")),
            ("future.toml", "schema_version = 3\n"),
        ],
        || {
            let o = opts(&[], &[]);
            insta::assert_snapshot!(load_err("missing.toml", &o), @"missing.toml: schema_version: missing required key (write `schema_version = 1` at the top of the manifest)");
            insta::assert_snapshot!(load_err("two.toml", &o), @"two.toml: schema_version (from two.toml): unsupported schema_version 2 (this valex reads 1)");
            insta::assert_snapshot!(load_err("text.toml", &o), @r#"text.toml: schema_version (from text.toml): expected an integer (this valex reads 1), found string "1""#);
            insta::assert_snapshot!(load_err("inc.toml", &o), @"inc.toml: schema_version (from include future.toml): unsupported schema_version 3 (this valex reads 1)");
        },
    );
}

#[test]
fn malformed_toml_reports_file_line_and_column() {
    let bad = "schema_version = 1\n[experiment]\nname = \"demo\nseed = 1\n";
    let bad_include = "[record]\ntap = = 1\n";
    with_files(
        &[
            ("bad.toml", bad),
            ("x.toml", &manifest("include = [\"sub/inc.toml\"]")),
            ("sub/inc.toml", bad_include),
        ],
        || {
            let o = opts(&[], &[]);
            insta::assert_snapshot!(load_err("bad.toml", &o), @r#"bad.toml: TOML parse error at line 3, column 13: invalid basic string, expected `"`"#);
            insta::assert_snapshot!(load_err("x.toml", &o), @"sub/inc.toml: TOML parse error at line 2, column 7: extra `=`, expected nothing");
        },
    );
}

#[test]
fn missing_manifest_and_include_files_name_the_path() {
    with_files(
        &[(
            "exp/x.toml",
            &manifest("include = [\"../_base/nope.toml\"]"),
        )],
        || {
            let o = opts(&[], &[]);
            insta::assert_snapshot!(load_err("exp/absent.toml", &o), @"exp/absent.toml: cannot read: No such file or directory");
            insta::assert_snapshot!(load_err("exp/x.toml", &o), @"_base/nope.toml: cannot read: No such file or directory (included from exp/x.toml)");
        },
    );
}

#[test]
fn include_cycles_show_the_chain() {
    with_files(
        &[
            ("exp/x.toml", &manifest("include = [\"../_base/a.toml\"]")),
            ("_base/a.toml", "include = [\"b.toml\"]\n"),
            ("_base/b.toml", "include = [\"a.toml\"]\n"),
            ("self.toml", &manifest("include = [\"self.toml\"]")),
        ],
        || {
            let o = opts(&[], &[]);
            insta::assert_snapshot!(load_err("exp/x.toml", &o), @"exp/x.toml: include (from include _base/b.toml): include cycle: exp/x.toml -> _base/a.toml -> _base/b.toml -> _base/a.toml");
            insta::assert_snapshot!(load_err("self.toml", &o), @"self.toml: include (from self.toml): include cycle: self.toml -> self.toml");
        },
    );
}

#[test]
fn include_must_be_an_array_of_paths() {
    with_files(
        &[
            ("x.toml", &manifest("include = \"base.toml\"")),
            ("y.toml", &manifest("include = [\"base.toml\", 3]")),
            ("base.toml", "[experiment]\nseed = 5\n"),
        ],
        || {
            let o = opts(&[], &[]);
            insta::assert_snapshot!(load_err("x.toml", &o), @r#"x.toml: include (from x.toml): expected an array of file paths, found string "base.toml""#);
            insta::assert_snapshot!(load_err("y.toml", &o), @"y.toml: include[1] (from y.toml): expected a file path string, found integer 3");
        },
    );
}

#[test]
fn the_cross_value_matrix_needs_value_labels() {
    let x = manifest(
        "[record]\nlabel_by = \"language\"\n[score]\nuse = \"scorer/lape\"\n[evaluate]\nuse = \"evaluator/forced-choice\"",
    );
    with_files(&[("x.toml", &x)], || {
        insta::assert_snapshot!(
            load_err("x.toml", &opts(&[], &["evaluate.cross_value=true"])),
            @r#"x.toml: evaluate.cross_value (from flag --set evaluate.cross_value=true): the cross-value matrix compares values' sets, but record.label_by = "language" selects one set per language; set cross_value = false (each value is still evaluated with its language's set, and neutral_text shows every language's set on every language)"#
        );
    });
}

#[test]
fn invalid_values_list_the_allowed_ones() {
    let x = manifest(
        "[record]\npositions = \"stroy\"\nlabel_by = \"lang\"\nlanguages = [\"zh\", \"fr\", \"zh\"]\nbatch_size = 0\ntemplate = { zh = \"{story} {moral}\", en = \"{story\" }\n[evaluate]\nuse = \"evaluator/forced-choice\"\nlanguages = []\nrandom_controls = -1\n[score]\nuse = \"scorer/lape\"\nparams = { top_rate = nan }",
    )
    .replace("name = \"demo\"", "name = \"my demo/1\"");
    with_files(&[("x.toml", &x)], || {
        insta::assert_snapshot!(load_err("x.toml", &opts(&[], &[])), @r#"
            x.toml: experiment.name (from x.toml): invalid name "my demo/1": use only letters A-Z a-z, digits, `_`, `.` and `-` (it names run directories)
            x.toml: record.positions (from x.toml): expected one of "all", "story", "rationale", "story+rationale", "generated", found "stroy" (did you mean "story"?)
            x.toml: record.label_by (from x.toml): expected one of "value", "value-language", "language", "value-condition", found "lang"
            x.toml: record.languages[1] (from x.toml): expected one of "zh", "en", found "fr" (did you mean "en"?)
            x.toml: record.languages[2] (from x.toml): language "zh" is listed twice
            x.toml: record.batch_size (from x.toml): must be at least 1, found 0
            x.toml: record.template.zh (from x.toml): unknown placeholder {moral}; allowed: {story} {rationale} {aligned} {violating} {value} {value_name} {conflict_motive} (write {{ and }} for literal braces)
            x.toml: record.template.en (from x.toml): unclosed { at byte 0 (write {{ for a literal brace)
            x.toml: score.params.top_rate (from x.toml): nan and infinite floats cannot be passed to components
            x.toml: evaluate.languages (from x.toml): must name at least one language ("zh", "en")
            x.toml: evaluate.random_controls (from x.toml): must not be negative, found -1
            "#);
    });
}

#[test]
fn record_conditions_need_value_condition_labels_and_unique_names() {
    let x = manifest(
        "[record]\nlabel_by = \"value-condition\"\n[score]\nuse = \"scorer/lape\"\ngroup_by = \"values\"",
    );
    let y = manifest(
        "[[record.conditions]]\nname = \"support\"\ntemplate = { zh = \"{story}\", en = \"{story}\" }\n[[record.conditions]]\nname = \"support\"\ntemplat = 1\n[[record.conditions]]\nname = \"a/b\"\ntemplate_file = { en = 3 }",
    );
    with_files(&[("x.toml", &x), ("y.toml", &y)], || {
        let o = opts(&[], &[]);
        insta::assert_snapshot!(load_err("x.toml", &o), @r#"
            x.toml: score.group_by (from x.toml): expected one of "value", found "values" (did you mean "value"?)
            x.toml: record.label_by (from x.toml): label_by = "value-condition" records each item once per [[record.conditions]] entry, but none is given (e.g. [[record.conditions]] name = "support" with template_file = { zh = "...", en = "..." })
            "#);
        insta::assert_snapshot!(load_err("y.toml", &o), @r#"
            y.toml: record.conditions[1].template: missing required section [record.conditions[1].template]
            y.toml: record.conditions[1].templat (from y.toml): unknown key "templat" (did you mean "template"?); known keys here: name, template, template_file
            y.toml: record.conditions[1].name (from y.toml): record condition name "support" is used twice
            y.toml: record.conditions[2].name (from y.toml): invalid name "a/b": use only letters A-Z a-z, digits, `_`, `.` and `-` (it names run directories)
            y.toml: record.conditions[2].template: missing required section [record.conditions[2].template]
            y.toml: record.conditions[2].template_file.en (from y.toml): expected a string, found integer 3
            y.toml: record.conditions (from y.toml): [[record.conditions]] are recorded only with label_by = "value-condition" (labels <value>/<condition>); set record.label_by = "value-condition" or remove the conditions
            "#);
    });
}

#[test]
fn cross_section_rules_need_record_and_score() {
    let x = manifest("[score]\nuse = \"scorer/lape\"");
    let y = manifest("[evaluate]\nuse = \"evaluator/forced-choice\"");
    with_files(&[("x.toml", &x), ("y.toml", &y)], || {
        let o = opts(&[], &[]);
        insta::assert_snapshot!(load_err("x.toml", &o), @"x.toml: score (from x.toml): [score] needs a [record] section (the scorer reads the recorded statistics)");
        insta::assert_snapshot!(load_err("y.toml", &o), @"y.toml: evaluate (from y.toml): [evaluate] needs a [score] section (it evaluates the neuron sets the scorer selects)");
    });
}

#[test]
fn malformed_overrides_are_reported_with_their_origin() {
    with_files(&[("x.toml", &manifest(""))], || {
        let o = opts(
            &[("VALEX_MODEL____PARAMS", "1")],
            &[
                "experiment.seed",
                "experiment..seed=1",
                "include=[\"a.toml\"]",
            ],
        );
        insta::assert_snapshot!(load_err("x.toml", &o), @r#"
            x.toml: env VALEX_MODEL____PARAMS: invalid variable name: empty key between `__` separators
            x.toml: flag --set experiment.seed: expected key=value, e.g. --set experiment.seed=7
            x.toml: flag --set experiment..seed=1: invalid key "experiment..seed": write dotted names of letters, digits, _ and -, e.g. score.params.top_rate
            x.toml: include (from flag --set include=["a.toml"]): include is read from manifest files only, not from --set or VALEX_* variables
            "#);
    });
}

#[test]
fn many_problems_are_reported_at_once_in_schema_order() {
    let x = "schema_version = 1\ninclude = [\"base.toml\"]\n[experiment]\nname = \"bad name\"\nseed = -4\n[model]\nparams = []\n[dataset]\nuse = \"dataset/jsonl\"\nextra = true\n[record]\npositions = \"everything\"\n[evaluate]\nuse = \"evaluator/forced-choice\"\n";
    let base = "[record]\nbatch_size = \"x\"\n";
    with_files(&[("x.toml", x), ("base.toml", base)], || {
        let o = opts(
            &[("VALEX_EVALUATE__RANDOM_CONTROLS", "many")],
            &["reporters=[{ use = \"reporter/json\", param = {} }]"],
        );
        insta::assert_snapshot!(load_err("x.toml", &o), @r#"
            x.toml: experiment.name (from x.toml): invalid name "bad name": use only letters A-Z a-z, digits, `_`, `.` and `-` (it names run directories)
            x.toml: experiment.seed (from x.toml): must not be negative, found -4
            x.toml: model.backend: missing required key (e.g. backend = "backend/candle")
            x.toml: model.params (from x.toml): expected a table of component params, found an array
            x.toml: dataset.extra (from x.toml): unknown key "extra"; known keys here: use, params
            x.toml: record.positions (from x.toml): expected one of "all", "story", "rationale", "story+rationale", "generated", found "everything"
            x.toml: record.batch_size (from include base.toml): expected an integer >= 1, found string "x"
            x.toml: evaluate.random_controls (from env VALEX_EVALUATE__RANDOM_CONTROLS): expected a non-negative integer, found string "many"
            x.toml: reporters[0].param (from flag --set reporters=[{ use = "reporter/json", param = {} }]): unknown key "param" (did you mean "params"?); known keys here: use, params
            x.toml: evaluate (from x.toml): [evaluate] needs a [score] section (it evaluates the neuron sets the scorer selects)
            "#);
    });
}

#[test]
fn stability_and_control_switches_are_type_checked() {
    let x = manifest(
        "[record]\nbootstrap = -2\nkeep_item_means = \"yes\"\n[score]\nuse = \"scorer/lape\"\n[evaluate]\nuse = \"evaluator/forced-choice\"\ncross_value = 1",
    );
    with_files(&[("x.toml", &x)], || {
        let out = load_err("x.toml", &opts(&[], &[]));
        insta::assert_snapshot!(out, @r#"
            x.toml: record.bootstrap (from x.toml): must not be negative, found -2
            x.toml: record.keep_item_means (from x.toml): expected true or false, found string "yes"
            x.toml: evaluate.cross_value (from x.toml): expected true or false, found integer 1
            "#);
    });
}
