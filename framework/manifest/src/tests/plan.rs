//! Resolution through the registry: component ids, factory params, combined reports.

use std::path::{Path, PathBuf};

use super::{MINIMAL, load_err, load_ok, opts, registry, with_files};
use crate::{LoadOptions, ManifestErrorKind, load_and_resolve, resolve};

fn full(extra: &str) -> String {
    format!(
        "schema_version = 1\n{MINIMAL}\n[record]\n[score]\nuse = \"lape\"\nparams = {{ top_rate = 0.02 }}\n[evaluate]\nuse = \"evaluator/forced-choice\"\n{extra}"
    )
}

fn resolve_err(path: &str, o: &LoadOptions) -> String {
    let loaded = load_ok(path, o);
    match resolve(&loaded, &registry()) {
        Ok(p) => panic!("expected errors, got {p:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn resolves_every_component_with_canonical_ids() {
    with_files(&[("exp/vs/x.toml", &full(""))], || {
        let loaded = load_ok("exp/vs/x.toml", &opts(&[], &[]));
        let plan = resolve(&loaded, &registry()).unwrap();
        assert_eq!(plan.ids.backend, "backend/dummy");
        assert_eq!(
            plan.ids.scorer.as_deref(),
            Some("scorer/lape"),
            "bare name accepted"
        );
        assert_eq!(plan.ids.intervention, "intervention/zero");
        assert_eq!(
            plan.ids.evaluator.as_deref(),
            Some("evaluator/forced-choice")
        );
        assert_eq!(plan.ids.reporters, ["reporter/json"]);
        assert_eq!(plan.reporters.len(), 1);
        assert!(plan.scorer.is_some() && plan.evaluator.is_some());
        let ids: Vec<&str> = plan.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "backend/dummy",
                "dataset/jsonl",
                "scorer/lape",
                "intervention/zero",
                "evaluator/forced-choice",
                "reporter/json"
            ]
        );
        assert!(plan.components.iter().all(|c| c.source == "manifest-tests"));
        // Relative params paths resolve against the manifest's folder.
        let files = plan.dataset.load().unwrap().files;
        assert_eq!(files, [PathBuf::from("exp/vs/data/demo.jsonl")]);
        assert_eq!(plan.base_dir, Path::new("exp/vs"));
    });
}

#[test]
fn load_and_resolve_agrees_with_load_then_resolve() {
    with_files(&[("x.toml", &full(""))], || {
        let o = opts(&[], &["experiment.seed=9"]);
        let (loaded, plan) = load_and_resolve(Path::new("x.toml"), &o, &registry()).unwrap();
        assert_eq!(loaded.manifest.experiment.seed, 9);
        assert_eq!(plan.manifest, loaded.manifest);
        let again = resolve(&load_ok("x.toml", &o), &registry()).unwrap();
        assert_eq!(again.ids, plan.ids);
    });
}

#[test]
fn unknown_component_ids_suggest_the_closest() {
    let x = full("").replace("use = \"lape\"", "use = \"scorer/lapee\"");
    let y = full("").replace("backend = \"backend/dummy\"", "backend = \"scorer/lape\"");
    with_files(&[("x.toml", &x), ("y.toml", &y)], || {
        let o = opts(&[], &["evaluate.use=evaluator/forced-choise"]);
        insta::assert_snapshot!(resolve_err("x.toml", &o), @r#"
            x.toml: score.use (from x.toml): unknown scorer "lapee" (did you mean "scorer/lape"?); available: scorer/lape
            x.toml: evaluate.use (from flag --set evaluate.use=evaluator/forced-choise): unknown evaluator "forced-choise" (did you mean "evaluator/forced-choice"?); available: evaluator/forced-choice
            "#);
        insta::assert_snapshot!(resolve_err("y.toml", &opts(&[], &[])), @r#"y.toml: model.backend (from y.toml): expected a backend id (backend/<name>), found "scorer/lape""#);
    });
}

#[test]
fn bad_params_are_reported_under_the_params_key_path() {
    let x = full("[[reporters]]\nuse = \"reporter/json\"\nparams = { pretty = true }\n")
        .replace("params = { path = \"m\" }", "params = { pth = \"m\" }");
    with_files(&[("x.toml", &x)], || {
        let o = opts(&[], &["score.params.top_rate=5"]);
        insta::assert_snapshot!(resolve_err("x.toml", &o), @r#"
            x.toml: model.params.pth (from x.toml): backend/dummy: unknown field `pth`, expected `path`
            x.toml: score.params.top_rate (from flag --set score.params.top_rate=5): scorer/lape: must be in (0, 1], found 5
            x.toml: reporters[0].params.pretty (from x.toml): reporter/json: unknown field `pretty`, there are no fields
            "#);
        let o = opts(&[("VALEX_SCORE__PARAMS__TOP_RATEE", "0.1")], &[]);
        let loaded = load_ok("x.toml", &o);
        let e = resolve(&loaded, &registry()).unwrap_err();
        assert!(
            e.errors
                .iter()
                .all(|e| e.kind == ManifestErrorKind::BadParams),
            "{e}"
        );
        insta::assert_snapshot!(e.to_string(), @r#"
            x.toml: model.params.pth (from x.toml): backend/dummy: unknown field `pth`, expected `path`
            x.toml: score.params.top_ratee (from env VALEX_SCORE__PARAMS__TOP_RATEE): scorer/lape: unknown field `top_ratee`, expected `top_rate`
            x.toml: reporters[0].params.pretty (from x.toml): reporter/json: unknown field `pretty`, there are no fields
            "#);
    });
}

#[test]
fn load_and_resolve_reports_schema_and_component_problems_together() {
    let x = full("").replace("name = \"demo\"", "name = \"demo\"\nseeed = 1")
        + "[intervention]\nuse = \"intervention/zeroo\"\n";
    with_files(&[("x.toml", &x)], || {
        let o = opts(
            &[("VALEX_RECORD__BATCH_SIZE", "0")],
            &["score.params.top_rate=0"],
        );
        let e = load_and_resolve(Path::new("x.toml"), &o, &registry()).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"
            x.toml: experiment.seeed (from x.toml): unknown key "seeed" (did you mean "seed"?); known keys here: name, seed, description
            x.toml: record.batch_size (from env VALEX_RECORD__BATCH_SIZE): must be at least 1, found 0
            x.toml: score.params.top_rate (from flag --set score.params.top_rate=0): scorer/lape: must be in (0, 1], found 0
            x.toml: intervention.use (from x.toml): unknown intervention "zeroo" (did you mean "intervention/zero"?); available: intervention/zero
            "#);
    });
}

#[test]
fn evaluate_conditions_resolve_in_order_with_their_names() {
    let x = full(
        "[[evaluate.conditions]]\nname = \"zero-again\"\nuse = \"zero\"\n[[evaluate.conditions]]\nname = \"z2\"\nuse = \"intervention/zero\"\nparams = {}\n",
    );
    with_files(&[("x.toml", &x)], || {
        let loaded = load_ok("x.toml", &opts(&[], &[]));
        let ev = loaded.manifest.evaluate.as_ref().unwrap();
        assert_eq!((ev.bootstrap, ev.permutations), (1000, 1000), "defaults");
        assert_eq!(ev.conditions.len(), 2);
        let plan = resolve(&loaded, &registry()).unwrap();
        let names: Vec<(&str, &str)> = plan
            .conditions
            .iter()
            .map(|(n, id, _)| (n.as_str(), id.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("zero-again", "intervention/zero"),
                ("z2", "intervention/zero")
            ]
        );
        assert_eq!(
            plan.ids.conditions,
            ["intervention/zero", "intervention/zero"]
        );
        assert_eq!(plan.ids.intervention, "intervention/zero");
        assert!(loaded.resolved_toml.contains("[[evaluate.conditions]]"));
    });
}

#[test]
fn bad_evaluate_conditions_are_all_reported() {
    let x = full(
        "bootstrap = -1\n[[evaluate.conditions]]\nname = \"targeted\"\nuse = \"intervention/zeroo\"\n[[evaluate.conditions]]\nname = \"a\"\nuse = \"intervention/zero\"\nparams = { factor = 5 }\n[[evaluate.conditions]]\nname = \"a\"\nuse = \"intervention/zero\"\nfactor = 2\n[[evaluate.conditions]]\nname = \"random-2\"\n",
    );
    with_files(&[("x.toml", &x)], || {
        let e = load_and_resolve(Path::new("x.toml"), &opts(&[], &[]), &registry()).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"
            x.toml: evaluate.bootstrap (from x.toml): must not be negative, found -1
            x.toml: evaluate.conditions[0].name (from x.toml): condition name "targeted" is reserved (targeted, baseline and random-<n> name the built-in conditions)
            x.toml: evaluate.conditions[2].factor (from x.toml): unknown key "factor"; known keys here: name, use, params, positions
            x.toml: evaluate.conditions[2].name (from x.toml): condition name "a" is used twice
            x.toml: evaluate.conditions[3].use: missing required key (e.g. use = "intervention/scale")
            x.toml: evaluate.conditions[3].name (from x.toml): condition name "random-2" is reserved (targeted, baseline and random-<n> name the built-in conditions)
            x.toml: evaluate.conditions[0].use (from x.toml): unknown intervention "zeroo" (did you mean "intervention/zero"?); available: intervention/zero
            x.toml: evaluate.conditions[1].params.factor (from x.toml): intervention/zero: unknown field `factor`, there are no fields
            "#);
    });
}

#[test]
fn edit_positions_parse_on_the_intervention_and_conditions_and_typos_are_named() {
    let x = full(
        "[[evaluate.conditions]]\nname = \"gen\"\nuse = \"zero\"\npositions = \"generated\"\n[[evaluate.conditions]]\nname = \"z2\"\nuse = \"zero\"\n",
    );
    let x = x.replace(
        "[record]",
        "[intervention]\nuse = \"zero\"\npositions = \"prompt\"\n[record]",
    );
    with_files(&[("x.toml", &x)], || {
        let loaded = load_ok("x.toml", &opts(&[], &[]));
        let m = &loaded.manifest;
        assert_eq!(m.intervention.positions, valex_core::EditPositions::Prompt);
        let ev = m.evaluate.as_ref().unwrap();
        assert_eq!(
            ev.conditions[0].positions,
            valex_core::EditPositions::Generated
        );
        assert_eq!(
            ev.conditions[1].positions,
            valex_core::EditPositions::All,
            "default"
        );
        assert!(loaded.resolved_toml.contains("positions = \"generated\""));
    });
    let bad = full("").replace(
        "[record]",
        "[intervention]\nuse = \"zero\"\npositions = \"promt\"\n[record]",
    );
    with_files(&[("x.toml", &bad)], || {
        let e = load_and_resolve(Path::new("x.toml"), &opts(&[], &[]), &registry()).unwrap_err();
        insta::assert_snapshot!(e.to_string(), @r#"x.toml: intervention.positions (from x.toml): expected one of "all", "prompt", "generated", found "promt" (did you mean "prompt"?)"#);
    });
}

#[test]
fn a_reference_backend_is_built_with_its_own_path_shorthand_and_errors() {
    let x = full("").replace(
        "params = { path = \"m\" }",
        "params = { path = \"m\" }\nreference = { backend = \"dummy\", path = \"other\" }",
    );
    with_files(&[("exp/x.toml", &x)], || {
        let loaded = load_ok("exp/x.toml", &opts(&[], &[]));
        let r = loaded.manifest.model.reference.as_ref().expect("reference");
        assert_eq!(r.params["path"], "other", "reference.path is params.path");
        let plan = resolve(&loaded, &registry()).unwrap();
        assert_eq!(plan.ids.reference_backend.as_deref(), Some("backend/dummy"));
        assert!(plan.reference_backend.is_some());
        let ids: Vec<&str> = plan.components.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            &ids[..3],
            ["backend/dummy", "backend/dummy", "dataset/jsonl"]
        );
    });
    with_files(&[("x.toml", &full(""))], || {
        let plan = resolve(&load_ok("x.toml", &opts(&[], &[])), &registry()).unwrap();
        assert!(plan.reference_backend.is_none() && plan.ids.reference_backend.is_none());
        // Bad ids, params and keys of the reference are reported under its own keys.
        let o = opts(
            &[],
            &[
                "model.reference.backend=backend/dumy",
                "model.reference.params.pth=1",
            ],
        );
        insta::assert_snapshot!(
            load_and_resolve(Path::new("x.toml"), &o, &registry()).unwrap_err().to_string(),
            @r#"x.toml: model.reference.backend (from flag --set model.reference.backend=backend/dumy): unknown backend "dumy" (did you mean "backend/dummy"?); available: backend/dummy"#
        );
        let o = opts(
            &[],
            &[
                "model.reference.backend=dummy",
                "model.reference.params.pth=1",
            ],
        );
        insta::assert_snapshot!(
            load_and_resolve(Path::new("x.toml"), &o, &registry()).unwrap_err().to_string(),
            @"x.toml: model.reference.params.pth (from flag --set model.reference.params.pth=1): backend/dummy: unknown field `pth`, expected `path`"
        );
        let o = opts(&[], &["model.reference.params.path=m"]);
        insta::assert_snapshot!(
            load_err("x.toml", &o),
            @r#"x.toml: model.reference.backend: missing required key (e.g. backend = "backend/ort")"#
        );
    });
}
