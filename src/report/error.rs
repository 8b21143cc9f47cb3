//! Errors of the exporters, the plan reader and the report writer.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("CSV export of {table}: {message}")]
    Csv {
        table: &'static str,
        message: String,
    },
    #[error("SVG plot {plot}: {message}")]
    Svg { plot: &'static str, message: String },
    #[error("JSON export: {0}")]
    Json(#[from] serde_json::Error),
    #[error("plan file is not valid: {0}")]
    PlanFormat(String),
    #[error("plan file has schema_version {found}; this workbench reads version {supported} (see docs/plan-format.md)")]
    UnsupportedSchema { found: u32, supported: u32 },
    #[error("scenario name {0:?} cannot be used as a directory name (use letters, digits, '-', '_' or '.')")]
    BadScenarioName(String),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}
