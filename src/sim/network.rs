//! Network link sampling: RTT, serialisation, loss, offline periods.

use rand_distr::{Distribution, Exp1};
use rand_pcg::Pcg64Mcg;

use super::config::{NetworkLink, Offline, OfflinePolicy, Payload};
use super::dist::{check_fit, unit, FitSampler};
use super::streams::{Source, Streams};
use super::SimError;

pub(crate) fn validate(link: &NetworkLink, field: &'static str) -> Result<(), SimError> {
    check_fit(&link.rtt, field)?;
    if link.bandwidth_bps.is_nan() || link.bandwidth_bps <= 0.0 {
        return Err(SimError::invalid(
            field,
            link.bandwidth_bps,
            "bandwidth_bps > 0",
        ));
    }
    if !(0.0..1.0).contains(&link.loss_probability) {
        return Err(SimError::invalid(
            field,
            link.loss_probability,
            "loss_probability in [0, 1)",
        ));
    }
    if !(link.retransmit_timeout_s.is_finite() && link.retransmit_timeout_s >= 0.0) {
        return Err(SimError::invalid(
            field,
            link.retransmit_timeout_s,
            "retransmit_timeout_s finite >= 0",
        ));
    }
    if link.mss_bytes == 0 {
        return Err(SimError::invalid(field, 0, "mss_bytes >= 1"));
    }
    match &link.offline {
        Offline::Never => {}
        Offline::Random {
            mean_online_s,
            mean_offline_s,
        } => {
            let ok = |x: f64| x.is_finite() && x > 0.0;
            if !ok(*mean_online_s) || !ok(*mean_offline_s) {
                return Err(SimError::invalid(
                    field,
                    format!("{mean_online_s}/{mean_offline_s}"),
                    "offline mean_online_s and mean_offline_s > 0",
                ));
            }
        }
        Offline::Fleet {
            offline_fraction,
            mean_offline_s,
        } => {
            let ok = (0.0..=1.0).contains(offline_fraction)
                && mean_offline_s.is_finite()
                && *mean_offline_s > 0.0;
            if !ok {
                return Err(SimError::invalid(
                    field,
                    format!("{offline_fraction}/{mean_offline_s}"),
                    "fleet offline_fraction in [0, 1] and mean_offline_s > 0",
                ));
            }
        }
        Offline::Windows(w) => {
            let mut prev = f64::NEG_INFINITY;
            for &(a, b) in w {
                if !(a.is_finite() && b.is_finite() && a >= prev && b >= a) {
                    return Err(SimError::invalid(
                        field,
                        format!("({a}, {b})"),
                        "offline windows sorted, start <= end, not overlapping",
                    ));
                }
                prev = b;
            }
        }
    }
    Ok(())
}

/// Connectivity state, advanced lazily with non-decreasing query times.
#[derive(Debug, Clone)]
enum Connectivity {
    Always,
    Random {
        mean_online_s: f64,
        mean_offline_s: f64,
        /// current offline window `[start, end)`; the next one is drawn
        /// once the query time passes `end`
        start: f64,
        end: f64,
        /// The device's own stream: its periods are the same whoever asks
        /// and when, so every link of one device (and every plan) agrees.
        rng: Pcg64Mcg,
    },
    Windows {
        windows: Vec<(f64, f64)>,
        next: usize,
    },
    /// Per request, independently (see [`Offline::Fleet`]).
    Fleet {
        offline_fraction: f64,
        mean_offline_s: f64,
    },
}

impl Connectivity {
    fn new(offline: &Offline, streams: &Streams) -> Self {
        match offline {
            Offline::Never => Connectivity::Always,
            Offline::Random {
                mean_online_s,
                mean_offline_s,
            } => {
                let mut rng = streams.sequential(Source::Periods);
                let start = exp(&mut rng) * mean_online_s;
                let end = start + exp(&mut rng) * mean_offline_s;
                Connectivity::Random {
                    mean_online_s: *mean_online_s,
                    mean_offline_s: *mean_offline_s,
                    start,
                    end,
                    rng,
                }
            }
            Offline::Windows(w) => Connectivity::Windows {
                windows: w.clone(),
                next: 0,
            },
            Offline::Fleet {
                offline_fraction,
                mean_offline_s,
            } => Connectivity::Fleet {
                offline_fraction: *offline_fraction,
                mean_offline_s: *mean_offline_s,
            },
        }
    }

    /// `None` if request `k`, sent at `t`, finds its device online, else the
    /// time the device comes back.
    fn offline_until(&mut self, t: f64, k: u64, streams: &Streams) -> Option<f64> {
        match self {
            Connectivity::Always => None,
            Connectivity::Random {
                mean_online_s,
                mean_offline_s,
                start,
                end,
                rng,
            } => {
                while t >= *end {
                    *start = *end + exp(rng) * *mean_online_s;
                    *end = *start + exp(rng) * *mean_offline_s;
                }
                (t >= *start).then_some(*end)
            }
            Connectivity::Windows { windows, next } => {
                while windows.get(*next).is_some_and(|w| t >= w.1) {
                    *next += 1;
                }
                windows
                    .get(*next)
                    .and_then(|&(a, b)| (t >= a && t < b).then_some(b))
            }
            Connectivity::Fleet {
                offline_fraction,
                mean_offline_s,
            } => {
                let mut rng = streams.request(Source::Connectivity, k);
                (unit(&mut rng) < *offline_fraction).then(|| t + exp(&mut rng) * *mean_offline_s)
            }
        }
    }
}

/// Result of sending a request over the link at time `t`.
pub(crate) enum Send {
    /// (uplink delay incl. any wait for reconnect, downlink delay) seconds.
    Delays(f64, f64),
    /// Offline and the policy (or the deadline) says fail.
    Offline,
    /// The request cannot arrive by its deadline, or TCP gave up on a packet
    /// (lost more than [`MAX_RETRANSMISSIONS`] times): the client gives up (a
    /// timeout).
    Lost,
}

/// Retransmissions of one packet before TCP gives up on the connection
/// (Linux `tcp_retries2` default; about 15 minutes of backed-off timeouts).
pub const MAX_RETRANSMISSIONS: u32 = 15;

/// TCP loss recovery for one message of `packets` packets, each transmission
/// of each packet lost independently with probability `p`:
/// - a lost packet followed by others of the message is recovered by fast
///   retransmit (duplicate acknowledgements) in about one RTT;
/// - the message's last packet has nothing behind it to trigger that: its
///   loss waits for the retransmission timeout (RTO);
/// - a lost retransmission waits for the RTO, doubled at each further loss
///   (exponential backoff): k timeouts in a row cost RTO (2^k - 1);
/// - packets recover in parallel: the message is late by its slowest packet.
///
/// Losses per packet are geometric; the packets before the last are drawn
/// together (the most losses among them), so a message costs two draws.
#[derive(Debug, Clone, Copy)]
struct LossRecovery {
    /// ln p (< 0).
    ln_p: f64,
    /// Packets before the last.
    leading: u64,
    rto_s: f64,
}

impl LossRecovery {
    fn new(bytes: u64, mss: u64, p: f64, rto_s: f64) -> Option<Self> {
        (p > 0.0).then(|| Self {
            ln_p: p.ln(),
            leading: bytes.div_ceil(mss).max(1) - 1,
            rto_s,
        })
    }

    /// Losses before a packet gets through, from a uniform `u` in [0, 1):
    /// P(at least k) = p^k.
    fn losses(&self, u: f64) -> f64 {
        ((1.0 - u).ln() / self.ln_p).floor()
    }

    /// The most losses among `self.leading` packets, from a uniform `u`:
    /// P(max <= m) = (1 - p^(m+1))^leading.
    fn most_losses(&self, u: f64) -> f64 {
        if self.leading == 0 {
            return 0.0;
        }
        // 1 - u^(1/n), accurately for large n
        let tail = -((u.max(f64::MIN_POSITIVE)).ln() / self.leading as f64).exp_m1();
        ((tail.ln() / self.ln_p).ceil() - 1.0).max(0.0)
    }

    /// Extra delay of the message (seconds; infinite when TCP gives up),
    /// given the round trip `rtt_s` of fast retransmit.
    fn extra_s(&self, rtt_s: f64, rng: &mut Pcg64Mcg) -> f64 {
        let last = self.losses(unit(rng));
        let leading = self.most_losses(unit(rng));
        if last.max(leading) > f64::from(MAX_RETRANSMISSIONS) {
            return f64::INFINITY;
        }
        let timeouts = |k: f64| self.rto_s * (k.exp2() - 1.0);
        let last_s = timeouts(last);
        let leading_s = if leading >= 1.0 {
            rtt_s + timeouts(leading - 1.0)
        } else {
            0.0
        };
        last_s.max(leading_s)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct LinkSampler {
    rtt: FitSampler,
    up_serialise_s: f64,
    down_serialise_s: f64,
    up_loss: Option<LossRecovery>,
    down_loss: Option<LossRecovery>,
    connectivity: Connectivity,
    policy: OfflinePolicy,
    streams: Streams,
    /// (up, down) when the delays are not random: no draws per send.
    constant: Option<(f64, f64)>,
    /// Also always online: nothing to do per send at all.
    fixed: Option<(f64, f64)>,
}

impl LinkSampler {
    pub fn new(
        link: &NetworkLink,
        payload: &Payload,
        streams: &Streams,
        field: &'static str,
    ) -> Result<Self, SimError> {
        validate(link, field)?;
        let bits = |b: u64| b as f64 * 8.0 / link.bandwidth_bps;
        let loss = |bytes: u64| {
            LossRecovery::new(
                bytes,
                link.mss_bytes,
                link.loss_probability,
                link.retransmit_timeout_s,
            )
        };
        let rtt = FitSampler::new(&link.rtt);
        let up_serialise_s = bits(payload.request_bytes);
        let down_serialise_s = bits(payload.response_bytes);
        let constant = match rtt.constant() {
            Some(c) if link.loss_probability == 0.0 => {
                Some((c * 0.5 + up_serialise_s, c * 0.5 + down_serialise_s))
            }
            _ => None,
        };
        let fixed = constant.filter(|_| link.offline == Offline::Never);
        Ok(Self {
            fixed,
            constant,
            rtt,
            up_serialise_s,
            down_serialise_s,
            up_loss: loss(payload.request_bytes),
            down_loss: loss(payload.response_bytes),
            connectivity: Connectivity::new(&link.offline, streams),
            policy: link.offline_policy,
            streams: *streams,
        })
    }

    /// (up, down) delays if they are the same for every send.
    #[inline]
    pub fn fixed(&self) -> Option<(f64, f64)> {
        self.fixed
    }

    /// Draws the delays of request `k`, sent at `t` (non-decreasing across
    /// calls) with the given absolute deadline. Request `k`'s draws come from
    /// its own generators, so they do not depend on what else was drawn.
    pub fn send(&mut self, t: f64, deadline: f64, k: u64) -> Send {
        if let Some((up, down)) = self.fixed {
            return Send::Delays(up, down);
        }
        let mut wait = 0.0;
        if let Some(back) = self.connectivity.offline_until(t, k, &self.streams) {
            match self.policy {
                OfflinePolicy::Fail => return Send::Offline,
                OfflinePolicy::WaitForReconnect if back > deadline => return Send::Offline,
                OfflinePolicy::WaitForReconnect => wait = back - t,
            }
        }
        if let Some((up, down)) = self.constant {
            return Send::Delays(wait + up, down);
        }
        let rng = &mut self.streams.request(Source::Network, k);
        let rtt = self.rtt.sample(rng);
        let half_rtt = rtt * 0.5;
        // a plain branch: through `map_or` the no-loss case paid a call
        let lost = |l: &Option<LossRecovery>, rng: &mut Pcg64Mcg| match l {
            Some(l) => l.extra_s(rtt, rng),
            None => 0.0,
        };
        let up = wait + half_rtt + self.up_serialise_s + lost(&self.up_loss, rng);
        let down = half_rtt + self.down_serialise_s + lost(&self.down_loss, rng);
        // A request that cannot reach the server by its deadline fails now,
        // rather than keep the simulated clock going for hours; a response
        // that would arrive after it is cut to arrive just after it (it fails
        // as a timeout when it does).
        let allowed = deadline - t;
        if !(up <= allowed && down.is_finite()) {
            return Send::Lost;
        }
        Send::Delays(up, down.min(allowed - up + 1e-6))
    }
}

#[inline]
fn exp(rng: &mut Pcg64Mcg) -> f64 {
    Exp1.sample(rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::config::LatencyFit;

    #[test]
    fn serialisation_and_rtt_add_up() {
        let streams = Streams::new(1);
        let link = NetworkLink::simple(LatencyFit::constant(0.040), 8e6);
        let payload = Payload {
            request_bytes: 10_000,
            response_bytes: 1_000,
        };
        let mut s = LinkSampler::new(&link, &payload, &streams, "link").expect("valid");
        match s.send(0.0, f64::INFINITY, 0) {
            Send::Delays(up, down) => {
                assert!((up - (0.020 + 0.010)).abs() < 1e-12);
                assert!((down - (0.020 + 0.001)).abs() < 1e-12);
            }
            Send::Offline | Send::Lost => panic!("online link"),
        }
    }

    fn extras(l: &LossRecovery, rtt_s: f64, n: u64) -> Vec<f64> {
        let streams = Streams::new(3);
        (0..n)
            .map(|k| l.extra_s(rtt_s, &mut streams.request(Source::Network, k)))
            .collect()
    }

    fn share(xs: &[f64], f: impl Fn(f64) -> bool) -> f64 {
        xs.iter().filter(|&&x| f(x)).count() as f64 / xs.len() as f64
    }

    #[test]
    fn a_lost_last_packet_waits_for_the_timeout_and_backs_off() {
        // one packet: nothing behind it to trigger fast retransmit
        let (p, rto) = (0.3, 0.2);
        let l = LossRecovery::new(100, 1460, p, rto).expect("lossy");
        let xs = extras(&l, 0.01, 200_000);
        let near = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // k losses in a row cost RTO (1 + 2 + ... + 2^(k-1))
        for (k, cost) in [(0, 0.0), (1, rto), (2, 3.0 * rto), (3, 7.0 * rto)] {
            let expect = p.powi(k) * (1.0 - p);
            let got = share(&xs, |x| near(x, cost));
            assert!(
                (got - expect).abs() < 0.005,
                "{k} losses: {got} vs {expect}"
            );
        }
    }

    #[test]
    fn a_lost_packet_with_others_behind_it_costs_one_round_trip() {
        let (p, rtt, rto) = (0.05, 0.04, 0.2);
        // 10 packets: the first 9 recover by fast retransmit
        let l = LossRecovery::new(10 * 1460, 1460, p, rto).expect("lossy");
        let xs = extras(&l, rtt, 200_000);
        // exactly one RTT: some of the first nine lost once, none twice, the last not lost
        let expect = ((1.0 - p * p).powi(9) - (1.0 - p).powi(9)) * (1.0 - p);
        let got = share(&xs, |x| (x - rtt).abs() < 1e-12);
        assert!((got - expect).abs() < 0.005, "{got} vs {expect}");
        // the most losses among nine packets, drawn at once, as nine draws give
        let mut rng = Streams::new(5).sequential(Source::Network);
        let (mut at_once, mut one_by_one) = ([0u32; 3], [0u32; 3]);
        for _ in 0..100_000 {
            let m = l.most_losses(unit(&mut rng)) as usize;
            at_once[m.min(2)] += 1;
            let m = (0..9)
                .map(|_| l.losses(unit(&mut rng)) as usize)
                .max()
                .unwrap_or(0);
            one_by_one[m.min(2)] += 1;
        }
        for i in 0..3 {
            let (a, b) = (f64::from(at_once[i]), f64::from(one_by_one[i]));
            assert!(
                (a - b).abs() < 0.02 * 100_000.0,
                "{at_once:?} {one_by_one:?}"
            );
        }
    }

    #[test]
    fn nearly_total_loss_never_delivers() {
        let streams = Streams::new(1);
        let mut link = NetworkLink::simple(LatencyFit::constant(0.001), 1e9);
        link.loss_probability = 0.999_999;
        let payload = Payload {
            request_bytes: 1024,
            response_bytes: 64,
        };
        let mut s = LinkSampler::new(&link, &payload, &streams, "link").expect("valid");
        // with or without a deadline: TCP gives up after its retries
        for deadline in [1.0, f64::INFINITY] {
            for k in 0..1_000 {
                assert!(matches!(s.send(0.0, deadline, k), Send::Lost));
            }
        }
    }

    #[test]
    fn offline_windows_fail_or_wait() {
        let streams = Streams::new(1);
        let mut link = NetworkLink::simple(LatencyFit::constant(0.0), f64::INFINITY);
        link.offline = Offline::Windows(vec![(1.0, 2.0), (5.0, 6.0)]);
        let payload = Payload {
            request_bytes: 0,
            response_bytes: 0,
        };
        let mut fail = LinkSampler::new(&link, &payload, &streams, "l").expect("valid");
        assert!(matches!(fail.send(0.5, 9.0, 0), Send::Delays(..)));
        assert!(matches!(fail.send(1.5, 9.0, 1), Send::Offline));
        assert!(matches!(fail.send(2.0, 9.0, 2), Send::Delays(..)));
        link.offline_policy = OfflinePolicy::WaitForReconnect;
        let mut wait = LinkSampler::new(&link, &payload, &streams, "l").expect("valid");
        match wait.send(5.25, 9.0, 3) {
            Send::Delays(up, _) => assert!((up - 0.75).abs() < 1e-12),
            Send::Offline | Send::Lost => panic!("should wait"),
        }
        assert!(matches!(wait.send(5.5, 5.9, 4), Send::Offline));
    }

    #[test]
    fn random_offline_fraction_matches() {
        let streams = Streams::new(9);
        let mut c = Connectivity::new(
            &Offline::Random {
                mean_online_s: 7.0,
                mean_offline_s: 3.0,
            },
            &streams,
        );
        let n = 200_000;
        let off = (0..n)
            .filter(|i| c.offline_until(*i as f64 * 0.1, *i, &streams).is_some())
            .count();
        let frac = off as f64 / n as f64;
        assert!((frac - 0.3).abs() < 0.03, "{frac}");
    }

    #[test]
    fn a_fleet_is_offline_its_share_from_the_start() {
        let streams = Streams::new(4);
        let mut c = Connectivity::new(
            &Offline::Fleet {
                offline_fraction: 0.3,
                mean_offline_s: 120.0,
            },
            &streams,
        );
        // the first second already has the long-run share, unlike one device
        // that starts online for minutes
        let n = 20_000u64;
        let off = (0..n)
            .filter(|&k| c.offline_until(k as f64 / n as f64, k, &streams).is_some())
            .count();
        let frac = off as f64 / n as f64;
        assert!((frac - 0.3).abs() < 0.015, "{frac}");
        // the same request is offline however often it is asked about
        let again = (0..n)
            .filter(|&k| c.offline_until(5.0, k, &streams).is_some())
            .count();
        assert_eq!(off, again);
    }
}
