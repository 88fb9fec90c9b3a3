//! Shared by the integration tests: loading the real model, or explaining why not.

use locus_embed::{EmbedConfig, Embedder, Precision};

/// The real encoder installed by scripts/setup.sh. Under CI its absence fails the test
/// (with the setup message); locally the test prints a notice and is skipped.
pub fn embedder(precision: Precision) -> Option<Embedder> {
    load(&EmbedConfig::default(), precision)
}

/// The base encoder (all-MiniLM-L6-v2 as published), which setup.sh always builds in both
/// precisions; Locus's own encoder ships as int8 only.
#[allow(dead_code)] // not every test file uses it
pub fn base_embedder(precision: Precision) -> Option<Embedder> {
    let dir = locus_embed::cache_dir().join("models").join(locus_embed::MODEL_NAME);
    load(&EmbedConfig { model_dir: Some(dir), ..EmbedConfig::default() }, precision)
}

/// The real encoder reading `max_tokens` tokens per text.
#[allow(dead_code)] // not every test file uses it
pub fn embedder_cut_at(max_tokens: usize) -> Option<Embedder> {
    load(&EmbedConfig { max_tokens, ..EmbedConfig::default() }, Precision::Int8)
}

fn load(cfg: &EmbedConfig, precision: Precision) -> Option<Embedder> {
    match Embedder::load_precision(cfg, precision) {
        Ok(e) => Some(e),
        Err(e) if e.needs_setup() && std::env::var_os("CI").is_none() => {
            eprintln!("notice: test skipped, the encoder is not installed: {e}");
            None
        }
        Err(e) => panic!("the real model and runtime are required here: {e}"),
    }
}
