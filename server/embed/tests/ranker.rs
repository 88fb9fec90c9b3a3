//! The shipped localization models (models/ranker.onnx, models/ranker.files.onnx) in the real ONNX Runtime give the scores their training scripts recorded.
//!
//! The fixtures (models/ranker_fixture.json, models/ranker.files_fixture.json) hold real
//! feature rows and scikit-learn's P(edited) for them; scripts/model/test_ranker.py checks the
//! same files from Python.

use std::path::{Path, PathBuf};

use locus_embed::{EmbedError, Ranker, FILE_RANKER_FEATURES, RANKER_FEATURES, TAIL_RANKER_FEATURES};

/// scikit-learn sums the trees in float64, ONNX Runtime in float32: ~1e-7 apart here.
const TOLERANCE: f32 = 1e-4;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

struct Fixture<const W: usize> {
    sha256: String,
    rows: Vec<[f32; W]>,
    expected: Vec<f32>,
}

fn fixture() -> Fixture<RANKER_FEATURES> {
    fixture_of("ranker_fixture.json")
}

fn fixture_of<const W: usize>(name: &str) -> Fixture<W> {
    let path = models_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let v: Vec<f32> = r.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
            <[f32; W]>::try_from(v).expect("W features per row")
        })
        .collect();
    let expected = json["expected"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    Fixture { sha256: json["onnx_sha256"].as_str().unwrap().to_owned(), rows, expected }
}

/// The shipped model in the real runtime. The model is part of the checkout, so its
/// absence always fails; a missing runtime fails under CI and is a notice locally.
fn ranker() -> Option<Ranker> {
    ranker_of("ranker.onnx", RANKER_FEATURES)
}

fn ranker_of(name: &str, width: usize) -> Option<Ranker> {
    let model = models_dir().join(name);
    assert!(model.is_file(), "{} is part of the checkout and is missing", model.display());
    match Ranker::load_with_width(&model, None, width) {
        Ok(r) => Some(r),
        Err(e) if e.needs_setup() && std::env::var_os("CI").is_none() => {
            eprintln!("notice: test skipped, ONNX Runtime is not installed: {e}");
            None
        }
        Err(e) => panic!("the real runtime is required here: {e}"),
    }
}

#[test]
fn scores_equal_the_fixture() {
    let Some(ranker) = ranker() else { return };
    let fx = fixture();
    assert_eq!(ranker.sha256(), fx.sha256, "the fixture was written for another model");
    assert_eq!(fx.rows.len(), fx.expected.len());
    assert!(fx.rows.len() >= 20);

    let got = ranker.score(&fx.rows).unwrap();
    assert_eq!(got.len(), fx.rows.len());
    for (i, (g, e)) in got.iter().zip(&fx.expected).enumerate() {
        assert!((g - e).abs() < TOLERANCE, "row {i}: ranker {g}, fixture {e}");
    }
}

#[test]
fn a_score_depends_on_its_row_only() {
    let Some(ranker) = ranker() else { return };
    let fx = fixture();
    let batch = ranker.score(&fx.rows).unwrap();
    let reversed: Vec<_> = fx.rows.iter().rev().copied().collect();
    let mut back = ranker.score(&reversed).unwrap();
    back.reverse();
    assert_eq!(batch, back);
    for (row, s) in fx.rows.iter().zip(&batch) {
        assert_eq!(ranker.score(std::slice::from_ref(row)).unwrap(), [*s]);
    }
    assert!(ranker.score::<RANKER_FEATURES>(&[]).unwrap().is_empty());
}

#[test]
fn metadata_names_sixteen_features_and_is_shared_across_threads() {
    let Some(ranker) = ranker() else { return };
    assert_eq!(ranker.feature_names().len(), RANKER_FEATURES);
    assert_eq!(ranker.feature_names()[0], "lexical");
    assert!(ranker.model_path().ends_with("ranker.onnx"));

    let fx = fixture();
    let ranker = std::sync::Arc::new(ranker);
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (r, rows) = (ranker.clone(), fx.rows.clone());
            std::thread::spawn(move || r.score(&rows).unwrap())
        })
        .collect();
    let expected = ranker.score(&fx.rows).unwrap();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
}

#[test]
fn a_changed_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("ranker.onnx");
    let mut bytes = std::fs::read(models_dir().join("ranker.onnx")).unwrap();
    bytes.push(0);
    std::fs::write(&model, bytes).unwrap();
    std::fs::copy(models_dir().join("ranker.json"), dir.path().join("ranker.json")).unwrap();
    let err = Ranker::load(&model, None).unwrap_err();
    assert!(matches!(err, EmbedError::ModelCorrupt { .. }), "{err:?}");
}

#[test]
fn the_file_model_scores_equal_its_fixture() {
    let Some(ranker) = ranker_of("ranker.files.onnx", FILE_RANKER_FEATURES) else { return };
    let fx = fixture_of::<FILE_RANKER_FEATURES>("ranker.files_fixture.json");
    assert_eq!(ranker.sha256(), fx.sha256, "the fixture was written for another model");
    assert_eq!(ranker.feature_names()[0], "file_score");
    let got = ranker.score(&fx.rows).unwrap();
    assert_eq!(got.len(), fx.expected.len());
    for (i, (g, e)) in got.iter().zip(&fx.expected).enumerate() {
        assert!((g - e).abs() < TOLERANCE, "row {i}: file model {g}, fixture {e}");
    }
    // Rows of the function model's width are refused, not misread.
    let wrong = fixture();
    assert!(ranker.score(&wrong.rows).is_err());
}

#[test]
fn the_tail_model_scores_equal_its_fixture() {
    let Some(ranker) = ranker_of("ranker.tail.onnx", TAIL_RANKER_FEATURES) else { return };
    let fx = fixture_of::<TAIL_RANKER_FEATURES>("ranker.tail_fixture.json");
    assert_eq!(ranker.sha256(), fx.sha256, "the fixture was written for another model");
    assert_eq!(ranker.feature_names()[RANKER_FEATURES], "semantic_all");
    let got = ranker.score(&fx.rows).unwrap();
    for (i, (g, e)) in got.iter().zip(&fx.expected).enumerate() {
        assert!((g - e).abs() < TOLERANCE, "row {i}: tail model {g}, fixture {e}");
    }
    assert!(ranker.score(&fixture().rows).is_err(), "rows of the function model's width");
}

#[test]
fn a_file_model_of_the_wrong_width_is_refused() {
    let err =
        Ranker::load_with_width(&models_dir().join("ranker.onnx"), None, FILE_RANKER_FEATURES).unwrap_err();
    // The metadata beside it names 16 features: refused before the runtime is loaded.
    assert!(err.to_string().contains("expected 12"), "{err}");
}
