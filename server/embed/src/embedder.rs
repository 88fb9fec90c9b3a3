//! The sentence encoder: text → token ids → ONNX Runtime → mean-pooled, L2-normalised 384-d vectors.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ndarray::Array2;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{PaddingParams, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::EmbedError;
use crate::model::{self, Checksums, Precision, TOKENIZER};
use crate::{runtime, DIM};

/// Texts per ONNX Runtime call by default: one. The int8 graph quantises activations
/// per call (one scale for the whole batch, padding included), so in a batch a text's
/// vector moves with its neighbours (cosine down to 0.985 measured), which a cache
/// keyed by content hash cannot allow. One text per call makes the vector a function
/// of the text alone, and on this 2-core machine it was also the fastest
/// (docs/embed-notes.md: 40 vs 27 embeddings/s per core at 256 tokens). Larger batches, sorted
/// by length, remain available through [`Embedder::with_batch_size`].
pub const BATCH_SIZE: usize = 1;
/// all-MiniLM-L6-v2 was trained on 256-token inputs; longer ones are cut.
pub const DEFAULT_MAX_TOKENS: usize = 256;
/// The size of the model's position table: no input can be longer.
pub const MODEL_MAX_TOKENS: usize = 512;
/// Text beyond `max_tokens × this` bytes is cut before tokenising, so a 10 MB input
/// costs no more than a long paragraph. A BERT token covers far fewer bytes on
/// average (words, punctuation, indentation runs), so the cut never binds earlier
/// than the token limit on ordinary text or code.
const MAX_BYTES_PER_TOKEN: usize = 64;

const INPUTS: [&str; 3] = ["input_ids", "attention_mask", "token_type_ids"];
const OUTPUT: &str = "last_hidden_state";

/// Where the runtime and the model come from, and how hard to run them.
/// Every field has a working default (`EmbedConfig::default()`).
#[derive(Clone, Debug, Default)]
pub struct EmbedConfig {
    /// The model folder; default `LOCUS_MODEL_DIR`, then `<cache>/models/locus-minilm-l6-loc`
    /// (Locus's own encoder) when installed, else `<cache>/models/all-minilm-l6-v2` (the base).
    pub model_dir: Option<PathBuf>,
    /// The ONNX Runtime library file; default `ORT_DYLIB_PATH`, then the cache, then python3's onnxruntime.
    pub runtime_path: Option<PathBuf>,
    /// ONNX Runtime intra-op threads; 0 = all available cores.
    pub threads: usize,
    /// Tokens per text, special tokens included; 0 = 256. At most 512.
    pub max_tokens: usize,
}

/// The loaded encoder. `Send + Sync`: calls from several threads take turns on the one
/// session (ONNX Runtime already spreads each call over `threads` cores).
pub struct Embedder {
    session: Mutex<Session>,
    batch_size: usize,
    tokenizer: Tokenizer,
    tokenizer_path: PathBuf,
    max_tokens: usize,
    model_id: String,
    model_path: PathBuf,
    runtime_path: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model_id", &self.model_id)
            .field("model_path", &self.model_path)
            .field("runtime_path", &self.runtime_path)
            .field("max_tokens", &self.max_tokens)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the int8 encoder (`model.onnx`). Fails, never panics, when the runtime or
    /// the model is missing or damaged; the error says to run `bash scripts/setup.sh`.
    pub fn load(cfg: &EmbedConfig) -> Result<Embedder, EmbedError> {
        Embedder::load_precision(cfg, Precision::Int8)
    }

    /// Loads the int8 or the fp32 graph of the same model.
    pub fn load_precision(cfg: &EmbedConfig, precision: Precision) -> Result<Embedder, EmbedError> {
        let max_tokens = match cfg.max_tokens {
            0 => DEFAULT_MAX_TOKENS,
            n if n < 2 => {
                return Err(EmbedError::Config(format!("max_tokens {n} leaves no room for [CLS] and [SEP]")))
            }
            n if n > MODEL_MAX_TOKENS => {
                return Err(EmbedError::Config(format!(
                    "max_tokens {n} is more than the model's {MODEL_MAX_TOKENS} positions"
                )))
            }
            n => n,
        };
        let threads = match cfg.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };

        let cache = crate::cache_dir();
        let dir = model::model_dir(cfg.model_dir.as_deref(), &cache);
        // The model files are checked before the runtime is looked for: a missing
        // model is the more common state, and this order reports it without
        // loading a native library.
        let sums = Checksums::read(&dir)?;
        let (model_bytes, model_sha) = sums.read_verified(precision.file_name())?;
        let tokenizer_path = dir.join(TOKENIZER);
        let (tokenizer_bytes, _) = sums.read_verified(TOKENIZER)?;
        let tokenizer = load_tokenizer(&tokenizer_bytes, &tokenizer_path, max_tokens)?;

        let rt = runtime::runtime(cfg.runtime_path.as_deref(), &cache)?;
        let session = Session::builder(&rt.env)
            .map_err(EmbedError::onnx)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(EmbedError::onnx)?
            .with_intra_threads(threads)
            .map_err(EmbedError::onnx)?
            .with_inter_threads(1)
            .map_err(EmbedError::onnx)?
            .commit_from_memory(&model_bytes)
            .map_err(EmbedError::onnx)?;
        check_signature(&session)?;

        Ok(Embedder {
            session: Mutex::new(session),
            batch_size: BATCH_SIZE,
            tokenizer,
            tokenizer_path,
            max_tokens,
            // Vectors of texts cut at another length are other vectors: the id says so.
            model_id: match max_tokens {
                DEFAULT_MAX_TOKENS => {
                    format!("{}-{}:{}", model::model_name(&dir), precision.label(), &model_sha[..12])
                }
                n => format!("{}-{}-t{n}:{}", model::model_name(&dir), precision.label(), &model_sha[..12]),
            },
            model_path: dir.join(precision.file_name()),
            runtime_path: rt.path.clone(),
        })
    }

    /// One unit vector of [`DIM`] floats per text, in input order.
    ///
    /// Texts are cut to `max_tokens`, sorted by length and run in batches of the
    /// embedder's batch size ([`BATCH_SIZE`] unless changed). With batches larger than
    /// one, an int8 vector can move slightly with the other texts of its batch.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let ids: Vec<Vec<i64>> = texts.iter().map(|t| self.token_ids(t)).collect::<Result<_, _>>()?;
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| ids[i].len());

        let mut out = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.batch_size) {
            let rows: Vec<&[i64]> = batch.iter().map(|&i| ids[i].as_slice()).collect();
            for (&i, v) in batch.iter().zip(self.run_batch(&rows)?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Texts per ONNX Runtime call from now on (at least 1); [`BATCH_SIZE`] by default.
    pub fn with_batch_size(mut self, batch_size: usize) -> Embedder {
        self.batch_size = batch_size.max(1);
        self
    }

    /// `<model folder's name>-<precision>:<first 12 hex digits of the model file's sha256>`,
    /// e.g. `locus-minilm-l6-loc-int8:8e5fae296651` or `all-minilm-l6-v2-int8:1378adbb8063` (with
    /// `-t<N>` after the precision when texts are cut at N tokens instead of 256): names the
    /// vectors this embedder makes, for caches keyed by it, and says which encoder made them.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// The ONNX file this embedder runs.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// The ONNX Runtime library of this process.
    pub fn runtime_path(&self) -> &Path {
        &self.runtime_path
    }

    /// Tokens per text (special tokens included) after truncation.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The token ids of one text, `[CLS] … [SEP]`, at most `max_tokens` long.
    pub fn token_ids(&self, text: &str) -> Result<Vec<i64>, EmbedError> {
        let text = prefix_at_char_boundary(text, self.max_tokens * MAX_BYTES_PER_TOKEN);
        let enc = self.tokenizer.encode(text, true).map_err(|e| EmbedError::Tokenizer {
            path: self.tokenizer_path.clone(),
            message: e.to_string(),
        })?;
        Ok(enc.get_ids().iter().map(|&id| i64::from(id)).collect())
    }

    fn run_batch(&self, rows: &[&[i64]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let seq = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        if seq == 0 {
            return Ok(vec![vec![0.0; DIM]; rows.len()]);
        }
        let mut input_ids = Array2::<i64>::zeros((rows.len(), seq));
        let mut attention = Array2::<i64>::zeros((rows.len(), seq));
        for (r, row) in rows.iter().enumerate() {
            for (c, &id) in row.iter().enumerate() {
                input_ids[[r, c]] = id;
                attention[[r, c]] = 1;
            }
        }
        // One text per input: every token is of type 0.
        let token_types = Array2::<i64>::zeros((rows.len(), seq));

        let inputs = ort::inputs![
            INPUTS[0] => Tensor::from_array(input_ids).map_err(EmbedError::onnx)?,
            INPUTS[1] => Tensor::from_array(attention).map_err(EmbedError::onnx)?,
            INPUTS[2] => Tensor::from_array(token_types).map_err(EmbedError::onnx)?,
        ];
        let mut session = self.session.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let outputs = session.run(inputs).map_err(EmbedError::onnx)?;
        let (shape, hidden) = outputs[OUTPUT].try_extract_tensor::<f32>().map_err(EmbedError::onnx)?;
        let expected = [rows.len() as i64, seq as i64, DIM as i64];
        if **shape != expected {
            return Err(EmbedError::Onnx(format!("{OUTPUT} has shape {shape:?}, expected {expected:?}")));
        }
        Ok(rows
            .iter()
            .enumerate()
            .map(|(r, row)| mean_pool(&hidden[r * seq * DIM..][..row.len() * DIM]))
            .collect())
    }
}

/// Mean over the rows of `[tokens × DIM]` (the padding is already excluded), then L2 normalisation.
fn mean_pool(tokens: &[f32]) -> Vec<f32> {
    let mut v = vec![0.0f32; DIM];
    for token in tokens.chunks_exact(DIM) {
        for (acc, x) in v.iter_mut().zip(token) {
            *acc += x;
        }
    }
    let n = (tokens.len() / DIM).max(1) as f32;
    v.iter_mut().for_each(|x| *x /= n);
    crate::normalize(&mut v);
    v
}

fn load_tokenizer(bytes: &[u8], path: &Path, max_tokens: usize) -> Result<Tokenizer, EmbedError> {
    let err = |message: String| EmbedError::Tokenizer { path: path.to_path_buf(), message };
    let mut tok = Tokenizer::from_bytes(bytes).map_err(|e| err(e.to_string()))?;
    // tokenizer.json ships with truncation to 128 and fixed padding to 128; Locus
    // truncates to max_tokens and pads each batch itself.
    tok.with_truncation(Some(TruncationParams {
        max_length: max_tokens,
        strategy: TruncationStrategy::LongestFirst,
        stride: 0,
        direction: TruncationDirection::Right,
    }))
    .map_err(|e| err(e.to_string()))?;
    tok.with_padding(None::<PaddingParams>);
    Ok(tok)
}

/// The graph contract of scripts/model/convert_minilm.py; a different file fails here, not mid-query.
fn check_signature(session: &Session) -> Result<(), EmbedError> {
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let has_inputs = INPUTS.iter().all(|n| inputs.contains(n)) && inputs.len() == INPUTS.len();
    if !has_inputs || !outputs.contains(&OUTPUT) {
        return Err(EmbedError::Onnx(format!(
            "the model has inputs {inputs:?} and outputs {outputs:?}; expected inputs {INPUTS:?} and output {OUTPUT:?}"
        )));
    }
    Ok(())
}

/// The longest prefix of `text` of at most `max` bytes that ends on a char boundary.
fn prefix_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_never_splits_a_char() {
        assert_eq!(prefix_at_char_boundary("héllo", 2), "h");
        assert_eq!(prefix_at_char_boundary("héllo", 3), "hé");
        assert_eq!(prefix_at_char_boundary("abc", 10), "abc");
    }

    #[test]
    fn pooling_averages_then_normalises() {
        let mut tokens = vec![0.0f32; 2 * DIM];
        tokens[0] = 3.0;
        tokens[DIM] = 1.0;
        tokens[DIM + 1] = 4.0;
        let v = mean_pool(&tokens);
        // mean = (2, 2, 0, …), normalised = (1/√2, 1/√2, 0, …)
        assert!((v[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!((v[1] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert!(v[2..].iter().all(|&x| x == 0.0));
    }

    #[test]
    fn bad_max_tokens_is_an_error() {
        for max_tokens in [1, 513] {
            let cfg = EmbedConfig { max_tokens, ..EmbedConfig::default() };
            let err = Embedder::load(&cfg).unwrap_err();
            assert!(matches!(err, EmbedError::Config(_)), "{err}");
        }
    }
}
