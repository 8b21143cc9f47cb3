//! Exporters: the serving plan as Markdown (with SVG pictures), CSV (polars)
//! and JSON. Every renderer is a pure function of a [`Report`]; only
//! [`write_report`] touches the file system, atomically.

pub mod csv;
pub mod error;
pub mod fixtures;
pub mod format;
pub mod json;
pub mod markdown;
pub mod model;
pub mod svg;
pub mod writer;

pub use csv::{candidates_csv, kernels_csv, latency_csv};
pub use error::ReportError;
pub use json::{
    compare_with_baseline, plan_json, read_plan, PlanFile, PlanFileAlternative, PLAN_SCHEMA_VERSION,
};
pub use markdown::markdown;
pub use model::*;
pub use svg::{latency_cdf_svg, pareto_svg, roofline_svg};
pub use writer::{render_files, validate, write_report, Formats};

/// File names under `<out>/<scenario>/`.
pub const REPORT_MD: &str = "report.md";
pub const PARETO_SVG: &str = "pareto.svg";
pub const CDF_SVG: &str = "latency-cdf.svg";
pub const ROOFLINE_SVG: &str = "roofline.svg";
pub const CANDIDATES_CSV: &str = "candidates.csv";
pub const KERNELS_CSV: &str = "kernels.csv";
pub const LATENCY_CSV: &str = "latency.csv";
pub const PLAN_JSON: &str = "plan.json";
