//! One-screen and one-line text summaries of a scenario (`validate`, `list`).

use std::fmt::Write;

use workbench_kernels::{ConvBlock, ModelSpec, Precision};

use crate::hardware::TargetKind;

use super::*;

fn architecture(spec: &ModelSpec) -> String {
    match spec {
        ModelSpec::Mlp(m) => {
            let mut widths = vec![m.input.to_string()];
            widths.extend(m.hidden.iter().map(|h| h.to_string()));
            widths.push(m.output.to_string());
            format!("mlp {} {:?}", widths.join("-"), m.activation).to_lowercase()
        }
        ModelSpec::Convnet(c) => {
            let blocks: Vec<String> = c
                .blocks
                .iter()
                .map(|b| match b {
                    ConvBlock::Standard {
                        out_channels,
                        kernel,
                        stride,
                    } => format!("conv{kernel}x{kernel}/{stride}:{out_channels}"),
                    ConvBlock::DepthwiseSeparable {
                        out_channels,
                        kernel,
                        stride,
                    } => format!("dwsep{kernel}x{kernel}/{stride}:{out_channels}"),
                })
                .collect();
            format!(
                "convnet {}x{}x{} [{}] -> {} classes",
                c.height,
                c.width,
                c.channels,
                blocks.join(" "),
                c.classes
            )
        }
        ModelSpec::Transformer(t) => {
            let head = if t.classes > 0 {
                format!(", {} classes", t.classes)
            } else {
                String::new()
            };
            format!(
                "transformer seq {} d_model {} heads {} ffn {} layers {}{head}",
                t.seq_len, t.d_model, t.heads, t.ffn, t.layers
            )
        }
    }
}

fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}/s")
    } else {
        let text = format!("{r:.3}");
        format!("{}/s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// Seconds to the millisecond below 100 s, whole above (a trace's window
/// ends at its last timestamp, with every digit of it).
fn seconds(s: f64) -> String {
    if s >= 100.0 {
        format!("{s:.0}")
    } else {
        let text = format!("{s:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

pub(super) fn render(s: &Scenario) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {}  ({})", s.name, s.path.display());
    if !s.description.is_empty() {
        let _ = writeln!(out, "  {}", s.description);
    }
    let reference = s
        .model
        .reference_variant()
        .map_or_else(String::new, |v| v.name.clone());
    let _ = writeln!(
        out,
        "model       {}{} variant(s), reference `{reference}`",
        if s.model.task.is_empty() {
            String::new()
        } else {
            format!("{}: ", s.model.task)
        },
        s.model.variants.len()
    );
    for v in &s.model.variants {
        let c = v.counts();
        let accuracy = v
            .accuracy
            .map(|a| format!(", declared accuracy {a}"))
            .unwrap_or_default();
        let _ = writeln!(out, "  {:<12} {}", v.name, architecture(&v.spec));
        let _ = writeln!(
            out,
            "  {:<12} {} params; weights f32 {} / f16 {} / int8 {}; {} FLOPs/sample; largest activation {}{accuracy}",
            "",
            format_count(c.params as f64),
            format_bytes(c.weight_bytes(Precision::F32) as f64),
            format_bytes(c.weight_bytes(Precision::F16) as f64),
            format_bytes(c.weight_bytes(Precision::Int8) as f64),
            format_count(c.flops_per_sample),
            format_bytes(c.max_activation_elems as f64 * 4.0),
        );
    }
    let t = &s.traffic;
    let shape = match &t.process {
        ArrivalProcess::Bursty { on_s, off_s } => {
            format!(
                " ({on_s} s on / {off_s} s off, peak {})",
                rate(t.peak_rate_per_s())
            )
        }
        ArrivalProcess::Diurnal {
            peak_factor,
            period_s,
        } => format!(
            " (peak x{peak_factor} = {}, period {period_s} s)",
            rate(t.peak_rate_per_s())
        ),
        ArrivalProcess::Trace { path, timestamps_s } => format!(
            " ({} arrivals replayed from {}, peak {} over {} s)",
            timestamps_s.len(),
            path.display(),
            rate(t.peak_rate_per_s()),
            super::TRACE_PEAK_WINDOW_S
        ),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "traffic     {} mean {}{shape}, simulated {} s",
        t.process.name(),
        rate(t.rate_per_s),
        seconds(t.duration_s)
    );
    let i = &s.inputs;
    let space = match i.space {
        InputSpace::Finite { distinct_inputs } => {
            format!("finite, {} distinct", format_count(distinct_inputs as f64))
        }
        InputSpace::Unbounded => "unbounded".to_string(),
    };
    let schedule = match (i.refresh_every_s, i.batch_window_s) {
        (Some(every), Some(window)) => {
            format!(" (job every {every} s, runs of at most {window} s)")
        }
        (Some(every), None) => format!(" (job every {every} s)"),
        (None, Some(window)) => format!(" (runs of at most {window} s)"),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        out,
        "inputs      {space}; freshness {} s{schedule}; zipf {}; request {} / response {}",
        i.freshness_s,
        i.zipf_exponent,
        format_bytes(i.request_bytes as f64),
        format_bytes(i.response_bytes as f64)
    );
    let o = &s.objectives;
    let budget = o
        .monthly_budget_usd
        .map(|b| format!("; budget ${b:.0}/month"))
        .unwrap_or_default();
    let throughput = if o.min_throughput_per_s > 0.0 {
        format!("; min throughput {}", rate(o.min_throughput_per_s))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "objectives  p{} <= {} ms{throughput}; accuracy floor {}{budget}; cost weight {}",
        o.latency_percentile, o.latency_ms, o.accuracy_floor, o.cost_weight
    );
    let c = &s.constraints;
    let mut parts = vec![if c.data_may_leave_device {
        "data may leave the device".to_string()
    } else {
        "PRIVACY: data may not leave the device".to_string()
    }];
    if c.offline_fraction > 0.0 {
        parts.push(format!(
            "offline {:.0}% of the time",
            c.offline_fraction * 100.0
        ));
    }
    if let Some(m) = c.max_device_memory_bytes {
        parts.push(format!("device memory <= {}", format_bytes(m as f64)));
    }
    if let Some(p) = c.max_device_power_watts {
        parts.push(format!("device power <= {p} W"));
    }
    let _ = writeln!(out, "constraints {}", parts.join("; "));
    if s.targets.edge_classes == super::EdgeClasses::Fleet {
        let _ = writeln!(
            out,
            "targets     the edge classes are one fleet, each serving its own users"
        );
    } else {
        let _ = writeln!(out, "targets");
    }
    let shares = s.targets.fleet();
    for target in s.targets.cloud.iter().chain(&s.targets.edge) {
        let spec = &target.spec;
        // A target given by its speed factor alone has no peak figures:
        // "0 GFLOP/s" would read as a machine that computes nothing.
        let known = |value: f64, unit: &str| {
            if value > 0.0 {
                format!("{value} {unit}")
            } else {
                format!("{unit} not stated")
            }
        };
        let mut line = format!(
            "  {:<5} {:<20} {} cores, {}, {}",
            match spec.kind {
                crate::hardware::TargetKind::Cloud => "cloud",
                crate::hardware::TargetKind::Edge => "edge",
            },
            spec.name,
            spec.cores,
            format_bytes(spec.memory_bytes as f64),
            known(spec.peak_gflops_f32, "GFLOP/s f32")
        );
        if spec.peak_gops_int8 > 0.0 {
            let _ = write!(line, ", {} Gops/s int8", spec.peak_gops_int8);
        }
        let _ = write!(line, ", {}", known(spec.mem_bandwidth_gbs, "GB/s"));
        if spec.cache_bytes > 0 {
            let _ = write!(line, ", cache {}", format_bytes(spec.cache_bytes as f64));
        }
        if let Some(f) = target.speed_factor {
            let _ = write!(line, ", x{f} this machine");
        }
        if spec.usd_per_hour > 0.0 {
            let _ = write!(line, ", ${}/h", spec.usd_per_hour);
        }
        // What the power limit is checked on, where there is one to check.
        let power_matters =
            s.constraints.max_device_power_watts.is_some() || spec.idle_power_watts > 0.0;
        if spec.kind == TargetKind::Edge && power_matters {
            let _ = write!(line, ", {} W busy", spec.power_watts);
            if spec.idle_power_watts > 0.0 {
                let _ = write!(line, " / {} W awake idle", spec.idle_power_watts);
            }
        }
        if let Some(n) = target.fleet_size {
            let _ = write!(line, ", fleet {}", format_count(n as f64));
        }
        if let Some((_, share)) = shares.iter().find(|(t, _)| t.spec.name == spec.name) {
            let _ = write!(line, " ({:.1}% of requests)", share * 100.0);
        }
        if let Some(l) = &target.link {
            let _ = write!(line, ", via {l}");
        }
        if let Some(us) = target.request_cpu_us {
            let _ = write!(line, ", {us} µs CPU/request");
        }
        if let Some(us) = target.message_cpu_us {
            let _ = write!(line, ", {us} µs CPU/message");
        }
        let _ = writeln!(out, "{line}");
    }
    for l in &s.targets.links {
        let mut line = format!(
            "  link  {:<20} rtt {} ms median / {} ms p99, {} Mbit/s, loss {}",
            l.name, l.rtt_median_ms, l.rtt_p99_ms, l.bandwidth_mbps, l.loss_fraction
        );
        if let Some(ms) = l.min_rto_ms {
            let _ = write!(line, ", min RTO {ms} ms");
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(b) = &s.targets.broker {
        let mut line = format!(
            "  broker {} ms per hop x {} hops, {} partitions",
            b.per_hop_ms, b.hops, b.partitions
        );
        if let Some(mb) = b.partition_mb_per_s {
            let _ = write!(line, ", <= {mb} MB/s each");
        }
        if let Some(n) = b.partition_messages_per_s {
            let _ = write!(line, ", <= {n} msg/s each");
        }
        if let Some(usd) = b.usd_per_month {
            let _ = write!(line, ", ${usd}/month");
        }
        if let Some(usd) = b.usd_per_gb {
            let _ = write!(line, ", ${usd}/GB");
        }
        let _ = writeln!(out, "{line}");
    }
    if let Some(st) = &s.targets.storage {
        let _ = writeln!(
            out,
            "  store {} ms lookup, ${}/GB-month",
            st.lookup_ms, st.usd_per_gb_month
        );
    }
    let sp = &s.search;
    let names = |v: Vec<&str>| v.join(",");
    let _ = writeln!(
        out,
        "search      modes {}; placements {}; backends {}; precisions {}",
        names(sp.modes.iter().map(|m| m.name()).collect()),
        names(sp.placements.iter().map(|p| p.name()).collect()),
        names(sp.backends.iter().map(|b| b.name()).collect()),
        names(sp.precisions.iter().map(|p| p.name()).collect()),
    );
    let _ = writeln!(
        out,
        "            batch sizes {:?}; queue delays {:?} ms; replicas {}..={}; budget {} s; seed {}",
        sp.batch_sizes,
        sp.max_queue_delay_ms,
        sp.min_replicas,
        sp.max_replicas,
        sp.measurement_budget_s,
        sp.seed
    );
    if let Some(e) = &s.expect {
        let _ = writeln!(
            out,
            "expect      mode {}, placement {}",
            e.mode, e.placement
        );
    }
    out
}

pub(super) fn one_line(s: &Scenario) -> String {
    let (family, params, flops) = match s.model.reference_variant() {
        Some(v) => {
            let c = v.counts();
            (v.family(), c.params as f64, c.flops_per_sample)
        }
        None => ("-", 0.0, 0.0),
    };
    let expect = s
        .expect
        .map(|e| format!("expect {}/{}", e.mode, e.placement))
        .unwrap_or_else(|| "no expect".into());
    format!(
        "{:<28} {:<12} {:>9} params {:>9} FLOPs  {:<9} {:>9}  p{} <= {} ms  {}",
        s.name,
        family,
        format_count(params),
        format_count(flops),
        s.traffic.process.name(),
        rate(s.traffic.rate_per_s),
        s.objectives.latency_percentile,
        s.objectives.latency_ms,
        expect
    )
}
