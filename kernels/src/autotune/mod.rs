//! Schedule autotuner: a discrete search space, a learned cost model
//! (gradient-boosted regression trees over schedule + shape features), a
//! model-guided search (simulated annealing over the model, then measuring the
//! most promising candidates), and a JSON-lines tuning log keyed by shape and
//! hardware fingerprint so a second tune of the same shape on the same machine
//! runs no trials.
//!
//! The measuring function is a closure: the autotuned backend passes one that
//! times the tiled GEMM; tests pass a deterministic synthetic cost surface.

pub mod bench;
pub mod gbt;
pub mod log;
pub mod space;
pub mod tuner;

pub use gbt::{BoostParams, Gbt};
pub use log::{hardware_fingerprint, RecordKind, TrialRecord, TuningLog, LOG_VERSION};
pub use space::{Config, Dimension, Params, SearchSpace};
pub use tuner::{tune, Strategy, TuneBudget, TuneKey, TuneOptions, TuneOutcome, TuneProgress};

/// Errors of the tuner and its log.
#[derive(Debug, thiserror::Error)]
pub enum TuneError {
    #[error("tuning log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("search space is empty or has no valid configuration")]
    EmptySpace,
    #[error("measurement failed: {0}")]
    Measure(String),
    #[error("no trial succeeded")]
    NoSuccessfulTrial,
}
