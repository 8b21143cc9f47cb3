//! This machine (probe, roofline) and the machines a plan may run on
//! (target catalog, projection).

pub mod catalog;
pub mod target;

pub use target::{TargetKind, TargetSpec, DEFAULT_PARALLEL_OVERHEAD_US};
pub mod probe;
pub mod project;
pub mod roofline;

pub use probe::LocalHardware;
pub use roofline::Roofline;
