//! The localization engine: issue signals, search tools, and the adaptive multi-turn search.
//!
//! Architecture invariant: this crate returns plain data ([`Localization`]) and knows nothing of
//! LSP, JSON-RPC, UTF-16 or the encoder's runtime; dense retrieval comes in through the
//! [`tools::Semantic`] trait.

pub mod engine;
pub mod signals;
pub mod tools;

pub use engine::{
    locate, Cancelled, Localization, Mode, Options, Ranked, Scorer, Trace, CANDIDATE_FEATURE_NAMES,
    FEATURE_NAMES, FILE_FEATURE_NAMES, FILE_POOL, KEEP_TOP, N_CANDIDATE_FEATURES, N_FEATURES,
    N_FILE_FEATURES, POOL_FILES,
};
pub use signals::{Signal, SignalKind};

#[cfg(test)]
mod tests;
