//! The localization engine's search: issue signals, the tools, the adaptive multi-turn search
//! and its policy, the fusion of evidence into rankings, and the learned re-ranking step.
//!
//! Architecture invariant: this crate returns plain data ([`Localization`]) and knows nothing of
//! LSP, JSON-RPC, UTF-16 or the models' runtime; dense retrieval comes in through the
//! [`tools::Semantic`] trait and the learned models through the [`Scorer`] trait.

pub mod features;
pub mod fusion;
pub mod issue;
pub mod localization;
mod policy;
pub mod rerank;
mod search;
pub mod signals;
pub mod tools;

pub use features::{CallFeatures, CandidateFeatures, FileFeatures, FunctionFeatures};
pub use fusion::Fused;
pub use localization::{
    Cancelled, ConsideredCall, DeclinedCall, Localization, Mode, OnDemand, Options, Policy, Ranked, RankedBy,
    Stop, Trace, DEFAULT_BUDGET_MS,
};
pub use rerank::{Reranked, Scorer, FILE_POOL, KEEP_TOP, POOL_FILES};
pub use search::{locate, search};
pub use signals::{Signal, SignalKind};

#[cfg(test)]
mod tests;
