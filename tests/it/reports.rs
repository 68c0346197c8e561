//! Reports of real runs: every manifest under experiments/ validates; the value-study demo
//! writes json, csv, markdown and a self-contained html report; and, where Chromium is
//! installed, the html report loads in headless Chromium without console errors and with every
//! figure. The reporters' own tests (plugins/reporters/tests) cover their output in detail.

use std::path::{Path, PathBuf};
use std::process::Command;

use valex_test_support::{Case, repo_root, valex_bin};

fn manifests(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            manifests(&p, out);
        } else if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
}

/// Every preset validates; files under `_base/` are includes, not experiments, and are
/// validated through the presets that include them.
#[test]
fn every_manifest_under_experiments_validates() {
    let root = repo_root().join("experiments");
    let mut all = Vec::new();
    manifests(&root, &mut all);
    let presets: Vec<&PathBuf> = all
        .iter()
        .filter(|p| !p.strip_prefix(&root).unwrap().starts_with("_base"))
        .collect();
    assert!(presets.len() >= 5, "found only {presets:?}");
    // Presets that load the example plugin name it in the default target folder; point them
    // at the library built next to the `valex` binary under test (`cargo build --workspace`).
    let lib = valex_bin()
        .parent()
        .expect("the binary lives in target/<profile>")
        .join(format!(
            "{}valex_plugin_example{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ));
    let mut failures = Vec::new();
    for m in &presets {
        let mut args = vec!["validate".to_owned(), m.display().to_string()];
        if std::fs::read_to_string(m).unwrap().contains("[[plugins]]") {
            assert!(
                lib.exists(),
                "{} not found: build it with `cargo build --workspace`",
                lib.display()
            );
            args.push("--set".to_owned());
            args.push(format!(
                "plugins=[{{ path = {:?} }}]",
                lib.display().to_string()
            ));
        }
        let out = Case::new().args(args).run();
        if out.code != 0 {
            failures.push(format!(
                "{}: exit {}\n{}",
                m.display(),
                out.code,
                out.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn plugins_lists_every_builtin_reporter() {
    let out = Case::new().args(["plugins"]).assert_exit(0);
    for id in [
        "reporter/json",
        "reporter/csv",
        "reporter/markdown",
        "reporter/html",
    ] {
        assert!(out.stdout.contains(id), "{id} missing:\n{}", out.stdout);
    }
}

#[test]
fn bad_reporter_params_are_one_line_errors_naming_the_key() {
    let manifest = repo_root().join("experiments/value-study/demo.toml");
    let out = Case::new()
        .args([
            "validate",
            &manifest.display().to_string(),
            "--set",
            "reporters=[{ use = \"reporter/csv\", params = { evaluaton = \"x.csv\" } }]",
        ])
        .assert_exit(2);
    let line = out.stderr.trim();
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(
        line.contains("reporters[0].params.evaluaton") && line.contains("unknown field"),
        "{line}"
    );
}

fn demo_run() -> (Case, PathBuf) {
    let manifest = repo_root().join("experiments/value-study/demo.toml");
    let case = Case::new().args(["run", &manifest.display().to_string(), "--out", "run"]);
    case.assert_exit(0);
    let dir = case.path().join("run");
    (case, dir)
}

/// The figures of report.html: `(id, svg length)`.
fn figures(page: &str) -> Vec<(String, usize)> {
    page.split("<figure id=\"")
        .skip(1)
        .map(|part| {
            let id = part[..part.find('"').unwrap()].to_owned();
            let body = &part[..part.find("</figure>").unwrap()];
            let svg = body
                .find("<svg")
                .map_or(0, |s| body.find("</svg>").unwrap_or(s) - s);
            (id, svg)
        })
        .collect()
}

/// A report with what differs between machines and versions taken out: sha256 hashes, the
/// valex version, and the SVG of each figure (its presence and size are checked elsewhere).
fn redact(report: &str) -> String {
    let mut out = String::with_capacity(report.len());
    let mut rest = report;
    while let Some(start) = rest.find("<svg") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("</svg>")
            .map_or(rest.len(), |e| start + e + "</svg>".len());
        out.push_str("<svg>[figure]</svg>");
        rest = &rest[end..];
    }
    out.push_str(rest);
    let mut hashed = String::with_capacity(out.len());
    let chars: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let run = chars[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            .count();
        if run == 64 {
            hashed.push_str("[sha256]");
            i += 64;
        } else {
            hashed.extend(&chars[i..i + run.max(1)]);
            i += run.max(1);
        }
    }
    hashed.replace(env!("CARGO_PKG_VERSION"), "[version]")
}

#[test]
fn demo_writes_every_report() {
    let (_case, dir) = demo_run();
    for f in [
        "results.json",
        "evaluation.csv",
        "neurons_per_layer.csv",
        "cross_value.csv",
        "side_effects.csv",
        "report.md",
        "report.html",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing from the run directory");
    }
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("results.json")).unwrap()).unwrap();
    let cells = results["evaluation"]["cells"].as_array().unwrap();
    let conditions: usize = cells
        .iter()
        .map(|c| c["conditions"].as_array().unwrap().len())
        .sum();
    let csv = std::fs::read_to_string(dir.join("evaluation.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + conditions, "one row per condition");
    let manifest_sha = results["provenance"]["manifest_sha256"].as_str().unwrap();
    assert!(csv.lines().skip(1).all(|l| l.contains(manifest_sha)));

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.starts_with("# valex report: value-study-demo\n\n## Provenance\n"));
    assert!(md.contains(manifest_sha));
    insta::assert_snapshot!("demo-report.md", redact(&md));

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let figs = figures(&html);
    let ids: Vec<&str> = figs.iter().map(|(i, _)| i.as_str()).collect();
    // The demo evaluates zh and en without the cross-value matrix, with the perplexity check.
    assert_eq!(
        ids,
        [
            "fig-neurons-per-layer",
            "fig-delta-1",
            "fig-delta-2",
            "fig-side-effects"
        ]
    );
    assert!(figs.iter().all(|(_, n)| *n > 500), "{figs:?}");
    assert!(
        !html
            .replace("xmlns=\"http://www.w3.org/2000/svg\"", "")
            .contains("http"),
        "external reference"
    );
    assert!(html.contains(manifest_sha));
    insta::assert_snapshot!("demo-report.html", redact(&html));

    // run.json lists every report with its hash.
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run.json")).unwrap()).unwrap();
    let outputs: Vec<&str> = run["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["file"].as_str().unwrap())
        .collect();
    assert!(outputs.contains(&"report.html") && outputs.contains(&"evaluation.csv"));
}

#[test]
fn demo_reports_are_byte_identical_across_runs() {
    let (_a, da) = demo_run();
    let (_b, db) = demo_run();
    for f in [
        "evaluation.csv",
        "neurons_per_layer.csv",
        "report.md",
        "report.html",
    ] {
        assert!(
            std::fs::read(da.join(f)).unwrap() == std::fs::read(db.join(f)).unwrap(),
            "{f} differs between two runs"
        );
    }
}

/// Loads the demo's report.html in headless Chromium: a screenshot that is a real 1280 x 2000
/// PNG, a DOM dump that still holds every figure, and no console error. Skips (and says why)
/// when /usr/bin/chromium is absent.
#[test]
fn html_report_loads_in_headless_chromium() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!(
            "SKIPPED html_report_loads_in_headless_chromium: /usr/bin/chromium not found \
             (install it with `apt-get install chromium` to run this test)"
        );
        return;
    }
    let (case, dir) = demo_run();
    let html_path = std::fs::canonicalize(dir.join("report.html")).unwrap();
    let url = format!("file://{}", html_path.display());
    let profile = case.path().join("chromium-profile");
    let shot = case.path().join("report.png");
    let common = [
        "--headless".to_owned(),
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--no-first-run".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        "--enable-logging=stderr".to_owned(),
        "--v=0".to_owned(),
        "--window-size=1280,2000".to_owned(),
    ];
    let run = |extra: &str| {
        let out = Command::new("timeout")
            .arg("120")
            .arg(chromium)
            .args(&common)
            .arg(extra)
            .arg(&url)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, _, err_shot) = run(&format!("--screenshot={}", shot.display()));
    assert_eq!(code, Some(0), "chromium --screenshot failed:\n{err_shot}");
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 2000));
    assert!(
        png.len() > 20_000,
        "screenshot of {} bytes is blank",
        png.len()
    );

    let (code, dom, err_dom) = run("--dump-dom");
    assert_eq!(code, Some(0), "chromium --dump-dom failed:\n{err_dom}");
    let page = std::fs::read_to_string(&html_path).unwrap();
    let want = figures(&page);
    let got = figures(&dom);
    assert_eq!(
        got.iter().map(|f| &f.0).collect::<Vec<_>>(),
        want.iter().map(|f| &f.0).collect::<Vec<_>>(),
        "figures after parsing"
    );
    assert!(
        got.iter().all(|(_, n)| *n > 500),
        "empty svg in the DOM: {got:?}"
    );
    assert_eq!(
        dom.matches("<svg").count(),
        page.matches("<svg").count(),
        "every svg survived parsing"
    );
    for log in [&err_shot, &err_dom] {
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("Uncaught") || l.contains(":CONSOLE"))
            .collect();
        assert!(bad.is_empty(), "console errors:\n{}", bad.join("\n"));
    }
    eprintln!(
        "chromium ran: screenshot {width}x{height} ({} bytes), DOM {} bytes with {} figures",
        png.len(),
        dom.len(),
        got.len()
    );
}
