//! A trace replayed on a share of a fleet: thinned, deterministically, with
//! its bursts kept.

use workbench::sim::{
    simulate, ArrivalProcess, Batching, EdgeDevices, Mode, Payload, RunControl, ServiceTime,
    SimConfig, SimError,
};

/// 20,000 requests in the first second (a burst), then 1,000/s for 9 s.
fn bursty_trace() -> Vec<f64> {
    let burst = (0..20_000).map(|i| f64::from(i) / 20_000.0);
    let quiet = (0..9_000).map(|i| 1.0 + f64::from(i) / 1_000.0);
    burst.chain(quiet).collect()
}

fn config(timestamps_s: Vec<f64>, share: f64, duration_s: f64, seed: u64) -> SimConfig {
    SimConfig {
        seed,
        arrivals: ArrivalProcess::Trace {
            timestamps_s,
            share,
            laps: 1,
        },
        payload: Payload {
            request_bytes: 100,
            response_bytes: 100,
        },
        timeout_s: Some(5.0),
        mode: Mode::Edge(EdgeDevices {
            devices: 1,
            batching: Batching::NONE,
            service: ServiceTime::Deterministic { seconds: 0.0005 },
            queue_capacity: 100_000,
            busy_power_w: 2.0,
            idle_power_w: 0.0,
            throttling: None,
        }),
        run: RunControl {
            duration_s,
            max_requests: None,
            warmup_s: 0.0,
            early_stop: None,
        },
    }
}

fn requests(share: f64, duration_s: f64, seed: u64) -> f64 {
    match simulate(&config(bursty_trace(), share, duration_s, seed)) {
        Ok(o) => o.simulated_requests as f64,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn share_one_replays_the_whole_trace() {
    let n = bursty_trace().len() as f64;
    assert_eq!(requests(1.0, 11.0, 1), n);
    // a config written before the share existed replays the whole trace too
    let cfg = config(bursty_trace(), 1.0, 11.0, 1);
    let mut json = serde_json::to_value(&cfg).expect("serialise");
    let trace = json["arrivals"]["Trace"].as_object_mut().expect("a trace");
    assert_eq!(trace.remove("share"), Some(serde_json::json!(1.0)));
    assert_eq!(trace.remove("laps"), Some(serde_json::json!(1)));
    let old: SimConfig = serde_json::from_value(json).expect("deserialise");
    assert_eq!(old, cfg);
    assert_eq!(simulate(&old), simulate(&cfg));
}

#[test]
fn a_thinned_trace_keeps_its_share_and_its_bursts() {
    let share = 0.05;
    // the burst alone, then the whole trace
    let burst = requests(share, 1.0, 7);
    let all = requests(share, 11.0, 7);
    let quiet = all - burst;
    // 1,000 and 450 expected; sd about 31 and 21
    assert!((burst - 1_000.0).abs() < 120.0, "{burst}");
    assert!((quiet - 450.0).abs() < 90.0, "{quiet}");
    // per second, the burst is still 20 times the quiet rate
    let contrast = burst / (quiet / 9.0);
    assert!((contrast / 20.0 - 1.0).abs() < 0.3, "{contrast}");
}

#[test]
fn thinning_is_deterministic_for_a_seed() {
    let a = simulate(&config(bursty_trace(), 0.3, 11.0, 5));
    let b = simulate(&config(bursty_trace(), 0.3, 11.0, 5));
    assert!(a.is_ok());
    assert_eq!(a, b);
    let other = simulate(&config(bursty_trace(), 0.3, 11.0, 6));
    assert_ne!(a, other);
}

fn refused_on(cfg: &SimConfig) -> &'static str {
    match simulate(cfg) {
        Err(SimError::InvalidConfig { field, .. }) => field,
        other => panic!("{:?} accepted: {other:?}", cfg.arrivals),
    }
}

#[test]
fn a_share_outside_zero_to_one_or_no_lap_is_refused() {
    for share in [0.0, -0.5, 1.5, f64::NAN] {
        let cfg = config(bursty_trace(), share, 11.0, 1);
        assert_eq!(refused_on(&cfg), "arrivals.share", "{share}");
    }
    let mut cfg = config(bursty_trace(), 0.5, 11.0, 1);
    cfg.arrivals = ArrivalProcess::Trace {
        timestamps_s: bursty_trace(),
        share: 0.5,
        laps: 0,
    };
    assert_eq!(refused_on(&cfg), "arrivals.laps");
    // laps of a trace of one instant would all fall at that instant
    cfg.arrivals = ArrivalProcess::Trace {
        timestamps_s: vec![3.0, 3.0],
        share: 0.5,
        laps: 2,
    };
    assert_eq!(refused_on(&cfg), "arrivals.laps");
}
