//! `plan.json`: the machine-readable serving plan (schema in
//! `docs/plan-format.md`), its reader, and the baseline comparison used by
//! `workbench run --baseline`.

use serde::{Deserialize, Serialize};

use super::error::ReportError;
use super::format;
use super::model::{
    Assumptions, ConstraintCheck, Plan, ProjectionBreakdown, Regression, Report, SensitivityLine,
};

/// Version of the `plan.json` schema this workbench writes and reads.
/// Bumped when a field is removed, renamed or changes meaning or unit;
/// adding a field does not bump it (readers ignore fields they do not know).
pub const PLAN_SCHEMA_VERSION: u32 = 1;

/// A plan that was not recommended, as stored in `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFileAlternative {
    #[serde(flatten)]
    pub plan: Plan,
    /// `null`: meets every constraint but ranked lower.
    pub rejected_because: Option<String>,
}

/// The contents of `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub schema_version: u32,
    pub scenario: String,
    pub description: String,
    pub feasible: bool,
    pub recommended: Option<Plan>,
    pub alternatives: Vec<PlanFileAlternative>,
    pub rationale: Vec<String>,
    pub constraints: Vec<ConstraintCheck>,
    pub sensitivity: Vec<SensitivityLine>,
    pub assumptions: Assumptions,
    /// How the recommended plan's compute was projected; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<ProjectionBreakdown>,
}

impl PlanFile {
    /// The serving-plan part of a report (no kernels, roofline or CDFs).
    pub fn from_report(report: &Report) -> PlanFile {
        PlanFile {
            schema_version: PLAN_SCHEMA_VERSION,
            scenario: report.scenario.clone(),
            description: report.description.clone(),
            feasible: report.feasible,
            recommended: report.recommended.clone(),
            alternatives: report
                .alternatives
                .iter()
                .map(|a| PlanFileAlternative {
                    plan: a.plan.clone(),
                    rejected_because: a.rejected_because.clone(),
                })
                .collect(),
            rationale: report.rationale.clone(),
            constraints: report.constraints.clone(),
            sensitivity: report.sensitivity.clone(),
            assumptions: report.assumptions.clone(),
            projection: report.projection.clone(),
        }
    }
}

/// Render `plan.json` (pretty-printed, trailing newline).
///
/// Numbers are written in shortest round-trip form, so the same report gives
/// the same bytes. Non-finite numbers would be written as `null` and not read
/// back: [`super::validate`] refuses them before anything is written.
pub fn plan_json(report: &Report) -> String {
    let file = PlanFile::from_report(report);
    // Serialising plain structs with string keys cannot fail; fall back to a
    // minimal object rather than panicking if it ever does.
    match serde_json::to_string_pretty(&file) {
        Ok(mut text) => {
            text.push('\n');
            text
        }
        Err(err) => format!(
            "{{\"schema_version\": {PLAN_SCHEMA_VERSION}, \"error\": {:?}}}\n",
            err.to_string()
        ),
    }
}

/// Parse a `plan.json` written by this or an earlier compatible workbench.
pub fn read_plan(text: &str) -> Result<PlanFile, ReportError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ReportError::PlanFormat(e.to_string()))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| {
            ReportError::PlanFormat("missing or non-integer `schema_version`".to_string())
        })?;
    if version != u64::from(PLAN_SCHEMA_VERSION) {
        return Err(ReportError::UnsupportedSchema {
            found: u32::try_from(version).unwrap_or(u32::MAX),
            supported: PLAN_SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|e| ReportError::PlanFormat(e.to_string()))
}

impl Regression {
    /// Whether this finding should fail CI (plan changes alone do not).
    pub fn fails(&self) -> bool {
        !matches!(self, Regression::PlanChanged { .. })
    }

    /// One line for the report and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Regression::P99Latency {
                old_ms,
                new_ms,
                relative_change,
            } => format!(
                "p99 latency regressed {} -> {} ({:+.1}%)",
                format::ms(*old_ms),
                format::ms(*new_ms),
                relative_change * 100.0
            ),
            Regression::Cost {
                old_usd_per_month,
                new_usd_per_month,
                relative_change,
            } => format!(
                "cost regressed {}/month -> {}/month ({:+.1}%)",
                format::usd(*old_usd_per_month),
                format::usd(*new_usd_per_month),
                relative_change * 100.0
            ),
            Regression::NoLongerFeasible => {
                "no plan is feasible any more (the baseline had one)".to_string()
            }
            Regression::PlanChanged { field, old, new } => {
                format!("plan changed: {field} {old} -> {new}")
            }
        }
    }
}

/// Relative growth from `old` to `new`; a growth from 0 is infinite.
fn relative_change(old: f64, new: f64) -> f64 {
    if old > 0.0 {
        (new - old) / old
    } else if new > old {
        f64::INFINITY
    } else {
        0.0
    }
}

/// Compare a new report against a baseline `plan.json`.
///
/// `tolerance` is a fraction (0.10 = 10%): the recommended plan's p99 latency
/// or monthly cost growing by strictly more than that is a failing
/// regression, as is losing feasibility. Changed plan dimensions are listed
/// as non-failing [`Regression::PlanChanged`] entries.
pub fn compare_with_baseline(old: &PlanFile, new: &Report, tolerance: f64) -> Vec<Regression> {
    let mut findings = Vec::new();
    if old.feasible && !new.feasible {
        findings.push(Regression::NoLongerFeasible);
    }
    let (old_plan, new_plan) = match (&old.recommended, &new.recommended) {
        (Some(o), Some(n)) => (o, n),
        (Some(o), None) => {
            findings.push(Regression::PlanChanged {
                field: "recommended".to_string(),
                old: o.id.clone(),
                new: "none".to_string(),
            });
            return findings;
        }
        (None, Some(n)) => {
            findings.push(Regression::PlanChanged {
                field: "recommended".to_string(),
                old: "none".to_string(),
                new: n.id.clone(),
            });
            return findings;
        }
        (None, None) => return findings,
    };

    let latency_change = relative_change(old_plan.latency_ms.p99, new_plan.latency_ms.p99);
    if latency_change > tolerance {
        findings.push(Regression::P99Latency {
            old_ms: old_plan.latency_ms.p99,
            new_ms: new_plan.latency_ms.p99,
            relative_change: latency_change,
        });
    }
    let cost_change = relative_change(old_plan.cost_usd_per_month, new_plan.cost_usd_per_month);
    if cost_change > tolerance {
        findings.push(Regression::Cost {
            old_usd_per_month: old_plan.cost_usd_per_month,
            new_usd_per_month: new_plan.cost_usd_per_month,
            relative_change: cost_change,
        });
    }

    let dimensions = |p: &Plan| -> Vec<(&'static str, String)> {
        vec![
            ("mode", p.mode.to_string()),
            ("placement", p.placement.to_string()),
            ("target", p.target.clone()),
            ("replicas", p.replicas.to_string()),
            ("model_variant", p.model_variant.clone()),
            ("backend", p.backend.to_string()),
            ("precision", p.precision.to_string()),
            ("max_batch", p.max_batch.to_string()),
            ("max_delay_ms", format!("{}", p.max_delay_ms)),
        ]
    };
    for ((field, old_value), (_, new_value)) in
        dimensions(old_plan).into_iter().zip(dimensions(new_plan))
    {
        if old_value != new_value {
            findings.push(Regression::PlanChanged {
                field: field.to_string(),
                old: old_value,
                new: new_value,
            });
        }
    }
    findings
}
