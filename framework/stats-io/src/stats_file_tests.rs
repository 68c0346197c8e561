use super::*;

fn sample() -> ActivationStats {
    let labels = vec!["富强/support".to_owned(), "富强/conflict".to_owned()];
    let mut s = ActivationStats::new("mlp.gate_act", 2, 3, &labels);
    for (k, l) in s.labels.iter_mut().enumerate() {
        #[expect(clippy::cast_precision_loss, reason = "tiny test values")]
        let base = k as f64;
        l.active = (0..6).map(|i| f64::from(i) + base).collect();
        l.sum = (0..6).map(|i| f64::from(i) * 0.25 - base).collect();
        l.sum_sq = (0..6).map(|i| f64::from(i * i) + 0.1).collect();
        l.tokens = 1234.0 + base;
        l.items = 7 + k as u64;
    }
    s
}

fn prov() -> Value {
    json!({"model": "tiny", "seed": 3})
}

#[test]
fn round_trips_through_stem_tensors_or_sidecar_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stem = dir.path().join("run.v1");
    write_stats(&stem, &sample(), &prov()).expect("writes");
    assert!(dir.path().join("run.v1.safetensors").is_file());
    assert!(dir.path().join("run.v1.json").is_file());
    for p in [
        stem.clone(),
        dir.path().join("run.v1.safetensors"),
        dir.path().join("run.v1.json"),
    ] {
        let (stats, sidecar) = read_stats(&p).expect("reads");
        assert_eq!(stats, sample());
        assert_eq!(sidecar["provenance"], prov());
        assert_eq!(sidecar["format"], "valex-stats");
        assert_eq!(sidecar["version"], 1);
        assert_eq!(sidecar["labels"][1]["name"], "富强/conflict");
        assert_eq!(sidecar["labels"][1]["items"], 8);
    }
}

#[test]
fn equal_statistics_give_equal_bytes() {
    let a = encode_stats(&sample(), &prov()).expect("encodes");
    let b = encode_stats(&sample(), &prov()).expect("encodes");
    assert_eq!(a, b);
    let dir = tempfile::tempdir().expect("temp dir");
    write_stats(&dir.path().join("s"), &sample(), &prov()).expect("writes");
    let on_disk = std::fs::read(dir.path().join("s.safetensors")).expect("read");
    assert_eq!(on_disk, a.tensors);
    // Tensor names are sorted in the header.
    let header_len = usize::try_from(u64::from_le_bytes(
        a.tensors[..8].try_into().expect("8 bytes"),
    ))
    .expect("small");
    let header = std::str::from_utf8(&a.tensors[8..8 + header_len]).expect("utf8");
    let conflict = header
        .find("富强/conflict/active")
        .expect("conflict tensor");
    let support = header.find("富强/support/active").expect("support tensor");
    assert!(conflict < support);
}

#[test]
fn statistics_without_sums_are_not_written() {
    let mut s = sample();
    s.labels[0].sum.clear();
    let err = encode_stats(&s, &Value::Null).expect_err("no sums");
    assert_eq!(
        err.to_string(),
        "statistics file <memory>: label 富强/support: sum has 0 values, expected 6 \
         (2 layers x 3 neurons)"
    );
}

/// Writes sample statistics, then lets `edit` change the sidecar JSON.
fn with_edited_sidecar(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, StatsIoError) {
    let dir = tempfile::tempdir().expect("temp dir");
    let stem = dir.path().join("s");
    write_stats(&stem, &sample(), &prov()).expect("writes");
    let side = dir.path().join("s.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&side).expect("read")).expect("json");
    edit(&mut v);
    std::fs::write(&side, serde_json::to_vec(&v).expect("json")).expect("write");
    let err = read_stats(&stem).expect_err("edited sidecar must fail");
    (dir, err)
}

#[test]
fn wrong_shape_names_file_tensor_and_both_shapes() {
    let (dir, err) = with_edited_sidecar(|v| v["n_neurons"] = json!(4));
    let path = dir.path().join("s.safetensors");
    assert_eq!(
        err.to_string(),
        format!(
            "statistics file {}: tensor 富强/support/active has shape [2, 3], expected [2, 4]",
            path.display()
        )
    );
}

#[test]
fn missing_tensor_is_named() {
    let (_dir, err) = with_edited_sidecar(|v| v["labels"][0]["name"] = json!("民主/support"));
    assert_eq!(
        *err.kind,
        StatsIoErrorKind::MissingTensor {
            name: "民主/support/active".into()
        }
    );
    assert!(
        err.to_string()
            .ends_with("s.safetensors: tensor 民主/support/active is missing")
    );
}

#[test]
fn missing_label_key_is_named() {
    let (dir, err) = with_edited_sidecar(|v| {
        v["labels"][1]
            .as_object_mut()
            .expect("object")
            .remove("tokens");
    });
    assert_eq!(
        err.to_string(),
        format!(
            "statistics file {}: key labels[1].tokens: missing or not a number",
            dir.path().join("s.json").display()
        )
    );
}

#[test]
fn other_versions_and_formats_are_refused() {
    let (_d, err) = with_edited_sidecar(|v| v["version"] = json!(2));
    assert!(
        err.to_string()
            .ends_with("format version 2 is not supported; this valex reads version 1"),
        "{err}"
    );
    let (_d, err) = with_edited_sidecar(|v| v["format"] = json!("other"));
    assert!(
        err.to_string()
            .ends_with("key format: expected \"valex-stats\", found \"other\""),
        "{err}"
    );
}

#[test]
fn missing_files_are_read_errors_with_a_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let err = read_stats(&dir.path().join("absent")).expect_err("absent");
    assert_eq!(*err.kind, StatsIoErrorKind::Read);
    assert!(err.path.ends_with("absent.json"));
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn stats_paths_strip_known_extensions_only() {
    let p = stats_paths(Path::new("a/b.c.json"));
    assert_eq!(p.tensors, PathBuf::from("a/b.c.safetensors"));
    assert_eq!(p.sidecar, PathBuf::from("a/b.c.json"));
    let p = stats_paths(Path::new("a/b.c"));
    assert_eq!(p.tensors, PathBuf::from("a/b.c.safetensors"));
}
