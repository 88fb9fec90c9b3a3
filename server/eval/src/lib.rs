//! Evaluation harness for Locus: benchmark data, source trees at base commits, metrics, reports
//! and the runner. It knows nothing of the search engine, which `runner::run` receives as a
//! closure, so any engine (or baseline) can be measured the same way.

pub mod data;
pub mod materialize;
