//! Shared by the integration tests: loading the real model, or explaining why not.

use locus_embed::{EmbedConfig, Embedder, Precision};

/// The real encoder installed by scripts/setup.sh. Under CI its absence fails the test
/// (with the setup message); locally the test prints a notice and is skipped.
pub fn embedder(precision: Precision) -> Option<Embedder> {
    match Embedder::load_precision(&EmbedConfig::default(), precision) {
        Ok(e) => Some(e),
        Err(e) if e.needs_setup() && std::env::var_os("CI").is_none() => {
            eprintln!("notice: test skipped, the encoder is not installed: {e}");
            None
        }
        Err(e) => panic!("the real model and runtime are required here: {e}"),
    }
}
