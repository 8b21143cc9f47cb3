//! Exporters: the serving plan as Markdown (with SVG pictures), CSV (polars)
//! and JSON. Every renderer is a pure function of a [`Report`]; only
//! [`write_report`] touches the file system, atomically.

pub mod error;
pub mod fixtures;
pub mod model;

pub use error::ReportError;
pub use model::*;
