//! `reporter/html`: structure, self-containment, escaping and determinism.

use serde_json::json;

use crate::{full, minimal, render};

fn page(results: &serde_json::Value) -> String {
    let files = render("reporter/html", json!({}), results);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "report.html");
    files[0].1.clone()
}

/// The ids of every `<figure id="...">`, each checked to hold one non-empty `<svg>`.
fn figures(page: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for part in page.split("<figure id=\"").skip(1) {
        let id = part[..part.find('"').unwrap()].to_owned();
        let body = &part[..part.find("</figure>").unwrap()];
        let svg_start = body
            .find("<svg")
            .unwrap_or_else(|| panic!("{id}: no <svg>"));
        let svg_end = body
            .find("</svg>")
            .unwrap_or_else(|| panic!("{id}: no </svg>"));
        let svg = &body[svg_start..svg_end];
        assert!(svg.len() > 500, "{id}: svg too small ({} bytes)", svg.len());
        assert!(
            svg.contains("<rect") || svg.contains("<circle"),
            "{id}: nothing drawn"
        );
        ids.push(id);
    }
    ids
}

/// No reference to anything outside the file: the only URLs are SVG namespaces.
fn assert_self_contained(page: &str) {
    let stripped = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for bad in [
        "http://", "https://", "<script", " src=", " href=", "url(", "@import",
    ] {
        assert!(
            !stripped.contains(bad),
            "external reference or script: {bad}"
        );
    }
}

/// Tags balance (void and self-closing elements aside), text has no raw `<`.
fn assert_balanced(page: &str) {
    const VOID: [&str; 4] = ["meta", "br", "!DOCTYPE", "link"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = page;
    while let Some(i) = rest.find('<') {
        let end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i + 1..end];
        rest = &rest[end + 1..];
        if tag.ends_with('/') {
            continue;
        }
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect();
        assert!(!name.is_empty(), "empty tag: <{tag}>");
        if VOID.contains(&name.as_str()) {
            continue;
        }
        if tag.starts_with('/') {
            let open = stack
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "mismatched tags");
        } else {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[test]
fn full_fixture_has_every_figure_and_is_self_contained() {
    let p = page(&full());
    assert_eq!(
        figures(&p),
        [
            "fig-neurons-per-layer",
            "fig-delta-1",
            "fig-delta-2",
            "fig-cross-1",
            "fig-cross-2",
            "fig-side-effects"
        ]
    );
    assert_self_contained(&p);
    assert_balanced(&p);
    for needle in [
        "manifest sha256",
        "model sha256",
        "dataset sha256",
        "0.0.0-test",
    ] {
        assert!(p.contains(needle), "provenance: {needle}");
    }
    assert!(
        p.contains(
            &full()["provenance"]["manifest_sha256"]
                .as_str()
                .unwrap()
                .to_owned()
        )
    );
    assert!(p.contains("scale-5"));
    assert!(p.contains("[-0.625, -0.375]"), "the fixture's CI");
}

#[test]
fn minimal_fixture_renders_without_optional_parts() {
    let p = page(&minimal());
    assert_eq!(
        figures(&p),
        [
            "fig-neurons-per-layer",
            "fig-delta-1",
            "fig-delta-2",
            "fig-cross-1",
            "fig-cross-2"
        ]
    );
    assert_self_contained(&p);
    assert_balanced(&p);
    assert!(!p.contains("side-effects"));
}

#[test]
fn output_is_byte_identical_for_the_same_results() {
    let a = page(&full());
    let b = page(&full());
    assert_eq!(a, b);
    // A different document gives a different page (the test above is not vacuous).
    assert_ne!(a, page(&minimal()));
}

#[test]
fn escapes_every_text_from_the_results() {
    let mut doc = full();
    let evil = "<script>alert(1)</script>&\"'";
    doc["experiment"]["name"] = evil.into();
    doc["selection"]["sets"][0]["label"] = evil.into();
    doc["evaluation"]["cells"][0]["value"] = evil.into();
    doc["evaluation"]["cross_value"][0]["labels"][0] = evil.into();
    let p = page(&doc);
    assert!(!p.contains("<script"), "raw script tag in the page");
    assert!(p.contains("&lt;script&gt;alert(1)&lt;/script&gt;&amp;"));
    assert_balanced(&p);
}
