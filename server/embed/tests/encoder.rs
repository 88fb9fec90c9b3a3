//! The real encoder end to end: parity with python-onnxruntime, ranking sanity, batching and order.

mod common;

use locus_embed::{cosine, Precision, BATCH_SIZE, DIM};

/// What scripts/model/reference.py wrote next to the model.
struct Reference {
    model_sha256: String,
    items: Vec<(String, Vec<i64>, Vec<f32>)>,
}

fn reference(model_dir: &std::path::Path) -> Reference {
    let path = model_dir.join("reference.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run `bash scripts/setup.sh`", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let items = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let text = item["text"].as_str().unwrap().to_owned();
            let ids = item["input_ids"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect();
            let emb =
                item["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            (text, ids, emb)
        })
        .collect();
    Reference { model_sha256: json["model_sha256"].as_str().unwrap().to_owned(), items }
}

#[test]
fn matches_python_onnxruntime() {
    let Some(e) = common::embedder(Precision::Int8) else { return };
    let r = reference(e.model_path().parent().unwrap());
    assert!(r.items.len() >= 4);
    let hash = e.model_id().rsplit(':').next().unwrap();
    assert!(r.model_sha256.starts_with(hash), "reference.json is of another model than {}", e.model_id());

    for (text, ids, _) in &r.items {
        assert_eq!(&e.token_ids(text).unwrap(), ids, "token ids differ for {text:?}");
    }
    // reference.py embedded each text alone, as the embedder does by default.
    let texts: Vec<&str> = r.items.iter().map(|(t, _, _)| t.as_str()).collect();
    let got = e.embed(&texts).unwrap();
    for ((text, _, want), got) in r.items.iter().zip(&got) {
        let c = cosine(want, got);
        eprintln!("parity cosine {c:.6} for {text:?}");
        assert!(c >= 0.999, "cosine {c} < 0.999 for {text:?}");
    }
}

#[test]
fn related_issue_and_code_score_higher_than_unrelated() {
    let Some(e) = common::embedder(Precision::Int8) else { return };
    let issue =
        "Registering a hook twice with the same name silently drops the first hook instead of keeping both.";
    let related = "def register_hook(self, name, fn):\n    \"\"\"Register fn to run on the event called name.\"\"\"\n    self._hooks[name] = [fn]";
    let unrelated = "pub fn transpose(m: &Matrix) -> Matrix {\n    let mut t = Matrix::zeros(m.cols, m.rows);\n    for i in 0..m.rows { for j in 0..m.cols { t[(j, i)] = m[(i, j)]; } }\n    t\n}";
    let v = e.embed(&[issue, related, unrelated]).unwrap();
    let (rel, unrel) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    eprintln!("related {rel:.3}, unrelated {unrel:.3}");
    assert!(rel > unrel + 0.1, "related {rel} should beat unrelated {unrel} clearly");
}

/// Texts of unsorted lengths, more than two batches of 32.
fn varied_texts() -> Vec<String> {
    (0..2 * 32 + 7).map(|i| format!("item {i}: {}", "lorem ipsum dolor ".repeat((i * 7) % 23))).collect()
}

#[test]
fn a_vector_depends_on_its_text_alone() {
    let Some(e) = common::embedder(Precision::Int8) else { return };
    assert_eq!(BATCH_SIZE, 1);
    let texts = varied_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = e.embed(&refs).unwrap();
    assert_eq!(all.len(), texts.len());
    for v in &all {
        assert_eq!(v.len(), DIM);
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    // Same text, other company: the same vector (what a cache by content hash needs).
    for i in [0, 5, 32, texts.len() - 1] {
        let alone = e.embed(&[refs[i]]).unwrap().remove(0);
        assert_eq!(alone, all[i], "text {i} changed with its neighbours");
    }
    assert!(e.embed(&[]).unwrap().is_empty());
}

#[test]
fn batches_of_32_keep_input_order() {
    let Some(e) = common::embedder(Precision::Int8) else { return };
    let e = e.with_batch_size(32);
    let texts = varied_texts();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let all = e.embed(&refs).unwrap();
    assert_eq!(all.len(), texts.len());
    for i in [0, 5, 32, texts.len() - 1] {
        let alone = e.embed(&[refs[i]]).unwrap().remove(0);
        // int8 activations are quantised per batch: close, not equal.
        let c = cosine(&alone, &all[i]);
        assert!(c > 0.97, "text {i}: cosine {c} with itself embedded alone");
        // And it is nearer to its own text than to any other one of the list.
        let nearest = (0..all.len())
            .max_by(|&a, &b| cosine(&alone, &all[a]).total_cmp(&cosine(&alone, &all[b])))
            .unwrap();
        assert_eq!(nearest, i, "output {i} is out of order");
    }
}

#[test]
fn texts_cut_shorter_make_other_vectors_under_another_model_id() {
    let (Some(full), Some(short)) = (common::embedder(Precision::Int8), common::embedder_cut_at(128)) else {
        return;
    };
    assert_eq!(short.max_tokens(), 128);
    assert!(short.model_id().contains("-t128:"), "{}", short.model_id());
    assert!(!full.model_id().contains("-t"), "{}", full.model_id());
    let long = "def f(x):\n    return g(x) + h(x)\n".repeat(40);
    assert_eq!(short.token_ids(&long).unwrap().len(), 128);
    let (a, b) = (full.embed(&[&long]).unwrap(), short.embed(&[&long]).unwrap());
    // 0.945 measured: the vector of the cut text is another one.
    let c = cosine(&a[0], &b[0]);
    assert!(c < 0.99, "the cut changed nothing: cosine {c}");
}

#[test]
fn empty_and_huge_texts_are_fine() {
    let Some(e) = common::embedder(Precision::Int8) else { return };
    let huge = "fn f() { g(); }\n".repeat(600_000); // ~10 MB
    let v = e.embed(&["", &huge]).unwrap();
    assert_eq!(v[0].len(), DIM);
    assert_eq!(e.token_ids(&huge).unwrap().len(), e.max_tokens());
    assert!(v[1].iter().all(|x| x.is_finite()));
}

#[test]
fn fp32_and_int8_agree() {
    let Some(int8) = common::base_embedder(Precision::Int8) else { return };
    let Some(fp32) = common::base_embedder(Precision::Fp32) else { return };
    assert_ne!(int8.model_id(), fp32.model_id());
    assert!(int8.model_id().starts_with("all-minilm-l6-v2-int8:"));
    let texts = [
        "KeyError raised by Settings.get when the key is missing",
        "def get(self, key):\n    return self._data[key]",
    ];
    let (a, b) = (int8.embed(&texts).unwrap(), fp32.embed(&texts).unwrap());
    for (x, y) in a.iter().zip(&b) {
        let c = cosine(x, y);
        assert!(c > 0.97, "int8 vs fp32 cosine {c}");
    }
}

#[test]
fn embedder_is_shareable_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<locus_embed::Embedder>();
    send_sync::<locus_embed::VectorStore>();
}

/// A copy of the installed model folder with `name` damaged by `damage`; loading it must fail
/// with `ModelCorrupt` naming the file and the set-up command, before anything is run.
fn load_damaged(name: &str, damage: impl Fn(&mut Vec<u8>)) -> Option<locus_embed::EmbedError> {
    let e = common::embedder(Precision::Int8)?;
    let src = e.model_path().parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    let target = dir.path().join(name);
    let mut bytes = std::fs::read(&target).unwrap();
    damage(&mut bytes);
    std::fs::write(&target, bytes).unwrap();
    let config = locus_embed::EmbedConfig { model_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let err = locus_embed::Embedder::load(&config).expect_err("a damaged model folder must not load");
    Some(err)
}

#[test]
fn a_truncated_or_altered_model_file_is_refused() {
    #[allow(clippy::type_complexity)]
    let damages: [(&str, &dyn Fn(&mut Vec<u8>)); 3] = [
        ("model.onnx", &|b: &mut Vec<u8>| b.truncate(b.len() / 2)),
        ("model.onnx", &|b: &mut Vec<u8>| {
            let mid = b.len() / 2;
            b[mid] ^= 0x55;
        }),
        ("tokenizer.json", &|b: &mut Vec<u8>| b.truncate(100)),
    ];
    for (name, damage) in damages {
        let Some(err) = load_damaged(name, damage) else { return };
        assert!(matches!(err, locus_embed::EmbedError::ModelCorrupt { .. }), "{name}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(name) && text.contains("bash scripts/setup.sh"), "{text}");
        assert!(err.needs_setup());
    }
}
