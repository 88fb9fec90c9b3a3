//! Evaluation harness for Locus: benchmark data, source trees at base commits, metrics, reports
//! and the runner. It knows nothing of the search engine, which [`runner::run`] receives as a
//! closure, so any engine (or baseline) is measured the same way (see `shared/EVAL.md`).

pub mod data;
pub mod materialize;
pub mod metrics;
pub mod report;
pub mod runner;

pub use data::{Gold, Instance, Issue};
pub use materialize::{materialize, MaterializeError};
pub use report::{markdown_table, summarize, InstanceRow, Metrics, Summary};
pub use runner::{run, Prediction, RunOptions};
