//! One candidate serving plan: every dimension the planner chooses.

use workbench_kernels::{BackendKind, Precision};

use crate::scenario::{Mode, Placement};

/// A point in the plan space, before it is simulated.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub mode: Mode,
    pub placement: Placement,
    /// Where the model runs: cloud instance type, or edge device class.
    pub target: String,
    /// Hybrid placement: the cloud instance type serving the fallback.
    pub fallback_target: Option<String>,
    /// Hybrid placement: what the fallback runs. `max_batch` and
    /// `max_delay_ms` are its batching: the device answers one at a time.
    /// Not part of the id: the search picks one per fallback target.
    pub fallback_model: Option<FallbackModel>,
    /// Cloud replicas serving online (or batch-job instances for batch mode).
    pub replicas: u32,
    pub variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
    pub max_batch: u32,
    pub max_delay_ms: f64,
    /// Hybrid precompute: share of the distinct inputs precomputed.
    pub precompute_fraction: Option<f64>,
    /// A tiered fleet plan: what each device class runs, in the fleet's
    /// order, when the classes run different builds (the mid-range phones a
    /// distilled model, say). `variant`, `backend` and `precision` are then
    /// those of the class serving the most requests. Empty: every device
    /// runs `variant` with `backend` at `precision`.
    pub class_builds: Vec<ClassBuild>,
}

/// What one device class of a tiered fleet plan runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassBuild {
    /// The class's edge target.
    pub class: String,
    pub variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
}

impl ClassBuild {
    /// "distilled tiled int8".
    pub fn describe(&self) -> String {
        format!(
            "{} {} {}",
            self.variant,
            self.backend.name(),
            self.precision.name()
        )
    }
}

/// The model a hybrid plan's cloud fallback runs.
#[derive(Debug, Clone, PartialEq)]
pub struct FallbackModel {
    pub variant: String,
    pub backend: BackendKind,
    pub precision: Precision,
}

impl Candidate {
    /// Stable identifier built from every dimension (links CSV rows, CDFs, baselines).
    pub fn id(&self) -> String {
        let mut id = format!(
            "{}/{}/{}",
            self.mode.name(),
            self.placement.name(),
            self.target
        );
        if let Some(fallback) = &self.fallback_target {
            id.push('+');
            id.push_str(fallback);
        }
        // A tiered plan names each class's build, in the order of the
        // classes in its target.
        let (variants, builds) = if self.class_builds.is_empty() {
            (
                self.variant.clone(),
                format!("{}-{}", self.backend.name(), self.precision.name()),
            )
        } else {
            let each = |f: &dyn Fn(&ClassBuild) -> String| {
                self.class_builds
                    .iter()
                    .map(f)
                    .collect::<Vec<_>>()
                    .join("&")
            };
            (
                each(&|b| b.variant.clone()),
                each(&|b| format!("{}-{}", b.backend.name(), b.precision.name())),
            )
        };
        id.push_str(&format!(
            "/x{}/{variants}/{builds}/b{}-d{}",
            self.replicas,
            self.max_batch,
            trim_float(self.max_delay_ms)
        ));
        if let Some(f) = self.precompute_fraction {
            id.push_str(&format!("/pre{}", trim_float(f * 100.0)));
        }
        id
    }

    /// The identifier without the replica count: plans that differ only in how
    /// many replicas they run belong to one family.
    pub fn family(&self) -> String {
        let mut c = self.clone();
        c.replicas = 0;
        c.id()
    }

    /// What a person reads: "online-http on cloud: aws-c7i.xlarge x3, base tiled f32, batch 8 / 2 ms".
    pub fn describe(&self) -> String {
        let target = match &self.fallback_target {
            Some(cloud) => format!("{} + {} x{}", self.target, cloud, self.replicas),
            None if self.placement == Placement::Cloud => {
                format!("{} x{}", self.target, self.replicas)
            }
            None => self.target.clone(),
        };
        let build = if self.class_builds.is_empty() {
            format!(
                "{} {} {}",
                self.variant,
                self.backend.name(),
                self.precision.name()
            )
        } else {
            self.class_builds_text()
        };
        let mut text = format!(
            "{} on {}: {}, {build}",
            self.mode.name(),
            self.placement.name(),
            target,
        );
        if let Some(f) = &self.fallback_model {
            text.push_str(&format!(
                " on the device; cloud fallback {} {} {}, {}",
                f.variant,
                f.backend.name(),
                f.precision.name(),
                self.batching()
            ));
        } else if self.mode != Mode::Batch {
            text.push_str(", ");
            text.push_str(&self.batching());
        }
        if let Some(f) = self.precompute_fraction {
            text.push_str(&format!(", top {}% precomputed", trim_float(f * 100.0)));
        }
        text
    }
}

impl Candidate {
    /// A tiered plan's builds: "full tiled f32 on phone-flagship, distilled
    /// tiled f32 on watch" (empty for one build everywhere).
    pub fn class_builds_text(&self) -> String {
        self.class_builds
            .iter()
            .map(|b| format!("{} on {}", b.describe(), b.class))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the devices of edge class `class` run: the class's own build on a
    /// tiered plan, else the plan's one build.
    pub fn build_on(&self, class: &str) -> ClassBuild {
        self.class_builds
            .iter()
            .find(|b| b.class == class)
            .cloned()
            .unwrap_or_else(|| ClassBuild {
                class: class.to_string(),
                variant: self.variant.clone(),
                backend: self.backend,
                precision: self.precision,
            })
    }

    /// Dynamic batching in words: "unbatched", "batches of up to 8 (wait up to 5 ms)".
    pub fn batching(&self) -> String {
        if self.max_batch <= 1 {
            "unbatched".to_string()
        } else {
            format!(
                "batches of up to {} (wait up to {} ms)",
                self.max_batch,
                trim_float(self.max_delay_ms)
            )
        }
    }
}

/// `2.0` -> "2", `0.5` -> "0.5": compact and stable for identifiers. Three
/// decimals, unless they would lose the value (a delay of 0.0001 ms and one
/// of 0.0004 ms had both read "0", giving two plans one id): then its
/// shortest exact form.
pub fn trim_float(x: f64) -> String {
    let s = format!("{x:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    let short = if s.is_empty() || s == "-" || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    };
    let kept = short
        .parse::<f64>()
        .is_ok_and(|back| (back - x).abs() <= 1e-9 * x.abs().max(1.0));
    if kept || !x.is_finite() {
        short
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_every_dimension() {
        let c = Candidate {
            mode: Mode::OnlineHttp,
            placement: Placement::Cloud,
            target: "aws-c7i.xlarge".into(),
            fallback_target: None,
            fallback_model: None,
            replicas: 3,
            variant: "base".into(),
            backend: BackendKind::Tiled,
            precision: Precision::Int8,
            max_batch: 8,
            max_delay_ms: 2.5,
            precompute_fraction: None,
            class_builds: Vec::new(),
        };
        assert_eq!(
            c.id(),
            "online-http/cloud/aws-c7i.xlarge/x3/base/tiled-int8/b8-d2.5"
        );
        // Delays three decimals cannot tell apart keep their own ids.
        let tiny = |ms: f64| Candidate {
            max_delay_ms: ms,
            ..c.clone()
        };
        assert_ne!(tiny(0.0001).id(), tiny(0.0004).id());
        assert!(
            tiny(0.0001).id().ends_with("b8-d0.0001"),
            "{}",
            tiny(0.0001).id()
        );
        assert_eq!(trim_float(10.000000000000002), "10");
        assert_eq!(trim_float(0.0), "0");
        assert!(c.describe().contains("aws-c7i.xlarge x3"));
        assert_eq!(trim_float(10.0), "10");
        assert_eq!(trim_float(0.0), "0");
    }

    #[test]
    fn a_tiered_plan_names_each_class_build_in_its_id() {
        let build = |class: &str, variant: &str, backend, precision| ClassBuild {
            class: class.into(),
            variant: variant.into(),
            backend,
            precision,
        };
        let c = Candidate {
            mode: Mode::OnlineHttp,
            placement: Placement::Edge,
            target: "phone-flagship&phone-midrange".into(),
            fallback_target: None,
            fallback_model: None,
            replicas: 1,
            variant: "full".into(),
            backend: BackendKind::Autotuned,
            precision: Precision::F32,
            max_batch: 1,
            max_delay_ms: 0.0,
            precompute_fraction: None,
            class_builds: vec![
                build(
                    "phone-flagship",
                    "full",
                    BackendKind::Autotuned,
                    Precision::F32,
                ),
                build(
                    "phone-midrange",
                    "distilled",
                    BackendKind::Quantized,
                    Precision::Int8,
                ),
            ],
        };
        assert_eq!(
            c.id(),
            "online-http/edge/phone-flagship&phone-midrange/x1/full&distilled/autotuned-f32&quantized-int8/b1-d0"
        );
        let uniform = Candidate {
            class_builds: Vec::new(),
            ..c.clone()
        };
        assert_ne!(uniform.family(), c.family());
        assert_eq!(c.build_on("phone-midrange").variant, "distilled");
        assert_eq!(uniform.build_on("phone-midrange").variant, "full");
        assert!(
            c.describe().contains(
                "full autotuned f32 on phone-flagship, distilled quantized int8 on phone-midrange"
            ),
            "{}",
            c.describe()
        );
    }
}
