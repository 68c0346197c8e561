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

/// Statistics with item level, kept item means and 3 bootstrap replicates, from a few items.
fn full_sample() -> ActivationStats {
    let labels = vec!["富强/support".to_owned(), "b".to_owned()];
    let mut s = ActivationStats::new("mlp.gate_act", 2, 3, &labels)
        .with_item_means()
        .with_bootstrap(42, 3);
    for key in 0..5_u64 {
        let label = usize::from(key % 2 == 1);
        #[expect(clippy::cast_precision_loss, reason = "tiny test values")]
        let k = key as f64;
        s.count_item(label, key, 2.0 + k);
        for layer in 0..2 {
            let a = [1.0, 0.0, 2.0];
            let sm = [0.5 * k, -1.0, 3.0 + k];
            let sq = [k * k, 1.0, 9.0];
            s.add_item_layer(label, key, layer, 2.0 + k, &a, &sm, &sq);
        }
    }
    s
}

#[test]
fn round_trips_item_level_item_means_and_replicates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stem = dir.path().join("full");
    let s = full_sample();
    assert!(s.labels[0].item_means.len() == 3 && s.n_replicates() == 3);
    write_stats(&stem, &s, &prov()).expect("writes");
    let (back, sidecar) = read_stats(&stem).expect("reads");
    assert_eq!(sidecar["item_level"], true);
    assert_eq!(sidecar["item_means"], true);
    assert_eq!(sidecar["bootstrap"]["seed"], 42);
    assert_eq!(
        back, s,
        "everything, replicate item means included, comes back"
    );
    // Writing what was read gives the same bytes.
    assert_eq!(
        encode_stats(&back, &prov()).expect("encodes"),
        encode_stats(&s, &prov()).expect("encodes")
    );
}

#[test]
fn files_without_item_level_keys_read_as_token_level_only() {
    let (dir, stem) = {
        let dir = tempfile::tempdir().expect("temp dir");
        let stem = dir.path().join("old");
        (dir, stem)
    };
    write_stats(&stem, &sample(), &prov()).expect("writes");
    // Emulate a file of issue 2: no item_level / item_means keys.
    let side = dir.path().join("old.json");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&side).expect("read")).expect("json");
    let o = v.as_object_mut().expect("object");
    o.remove("item_level");
    o.remove("item_means");
    std::fs::write(&side, serde_json::to_vec(&v).expect("json")).expect("write");
    let (back, _) = read_stats(&stem).expect("reads");
    assert!(
        back.labels
            .iter()
            .all(|l| l.item_sum.is_empty() && l.item_sum_sq.is_empty())
    );
    assert_eq!(back.labels[0].active, sample().labels[0].active);
    assert!(back.bootstrap.is_none());
}

#[test]
fn missing_replicate_tensor_is_named() {
    let (_dir, err) = {
        let dir = tempfile::tempdir().expect("temp dir");
        let stem = dir.path().join("s");
        write_stats(&stem, &full_sample(), &prov()).expect("writes");
        let side = dir.path().join("s.json");
        let mut v: Value =
            serde_json::from_slice(&std::fs::read(&side).expect("read")).expect("json");
        let reps = v["bootstrap"]["replicates"].as_array_mut().expect("array");
        reps.push(reps[0].clone());
        std::fs::write(&side, serde_json::to_vec(&v).expect("json")).expect("write");
        let err = read_stats(&stem).expect_err("replicate 3 has no tensors");
        (dir, err)
    };
    assert_eq!(
        *err.kind,
        StatsIoErrorKind::MissingTensor {
            name: "bootstrap/3/富强/support/active".into()
        }
    );
}

#[test]
fn labels_with_and_without_item_level_are_not_written() {
    let mut s = sample();
    s.labels[1].item_sum.clear();
    let err = encode_stats(&s, &Value::Null).expect_err("mixed layout");
    assert_eq!(
        err.to_string(),
        "statistics file <memory>: label 富强/conflict: item_sum has 0 values, expected 6 \
         (2 layers x 3 neurons)"
    );
}

/// Writes `sidecar` and `tensors` as the stem `s` in a temp dir and reads them back.
fn read_raw(sidecar: &[u8], tensors: &[u8]) -> (tempfile::TempDir, Result<(), StatsIoError>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("s.json"), sidecar).expect("write");
    std::fs::write(dir.path().join("s.safetensors"), tensors).expect("write");
    let r = read_stats(&dir.path().join("s")).map(|_| ());
    (dir, r)
}

// Found by review while writing the stats_file fuzz target (issue 10): n_layers * n_neurons
// overflowed (a panic
// with overflow checks, a wrong size without).
#[test]
fn r10_overflowing_dimensions_are_an_error_not_a_panic() {
    let side = json!({"format": "valex-stats", "version": 1, "tap": "t",
        "n_layers": 1_u64 << 40, "n_neurons": 1_u64 << 40, "labels": []});
    let tensors = b"\x02\0\0\0\0\0\0\0{}";
    let (_dir, r) = read_raw(&serde_json::to_vec(&side).expect("json"), tensors);
    let err = r.expect_err("must fail").to_string();
    assert!(err.contains("n_layers x n_neurons"), "{err}");
}

// Found by review while writing the stats_file fuzz target (issue 10): data_offsets near
// u64::MAX overflowed when
// added to the header end.
#[test]
fn r10_data_offsets_near_u64_max_are_an_error_not_a_panic() {
    let side = serde_json::to_vec(&json!({"format": "valex-stats", "version": 1, "tap": "t",
        "n_layers": 1, "n_neurons": 1, "labels": [{"name": "a", "tokens": 1.0, "items": 1}]}))
    .expect("json");
    let header = format!(
        r#"{{"a/active":{{"dtype":"F64","shape":[1,1],"data_offsets":[{},{}]}}}}"#,
        u64::MAX - 8,
        u64::MAX
    );
    let mut tensors = (header.len() as u64).to_le_bytes().to_vec();
    tensors.extend_from_slice(header.as_bytes());
    let (_dir, r) = read_raw(&side, &tensors);
    let err = r.expect_err("must fail").to_string();
    assert!(err.contains("beyond the file"), "{err}");
}

// See: #10 (the fuzz target reads through `read_stats_from_bytes`)
#[test]
fn from_bytes_reads_like_the_files_and_names_them() {
    let enc = encode_stats(&sample(), &prov()).expect("encodes");
    let path = Path::new("runs/s.safetensors");
    let (stats, sidecar) = read_stats_from_bytes(path, &enc.sidecar, &enc.tensors).expect("reads");
    assert_eq!(stats, sample());
    assert_eq!(sidecar["provenance"], prov());
    let e = read_stats_from_bytes(path, &enc.sidecar, &enc.tensors[..20]).unwrap_err();
    assert!(e.to_string().contains("runs/s.safetensors"), "{e}");
    let e = read_stats_from_bytes(path, b"{", &enc.tensors).unwrap_err();
    assert!(e.to_string().contains("runs/s.json"), "{e}");
}
