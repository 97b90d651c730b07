//! Fault injection: per-route (or `"*"`) error rates and bursts, dropped connections, added
//! latency, and creates that misbehave. The same JSON shape is read from `SIMULATOR_FAULTS` and
//! from `PUT /_simulator/faults`, e.g.
//!
//! ```json
//! {"routes": {"*": {"rate_503": 0.1, "latency_ms": 20},
//!             "GET /appliance/{id}": {"next_423": 2, "next_drop": 1}},
//!  "ambiguous_creates": 1, "failed_creates": 0}
//! ```
//!
//! Route keys are the counter keys (`"DELETE /appliance/{id}/power"`). Bursts (`next_*`) are
//! used up first, in the order drop, 503, 423, 500; then one seeded draw decides among the
//! rates. A route's own entry is consulted before `"*"`.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

/// The faults to inject. Counts (`next_*`, `*_creates`) go down as they are used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// By route key (`"POST /appliance"`, `"GET /appliance/{id}"`, ...) or `"*"` for all.
    pub routes: BTreeMap<String, RouteFaults>,
    /// The next N creates really create the appliance but answer 500.
    pub ambiguous_creates: u32,
    /// The next N creates end `failed` instead of `available` after migrating.
    pub failed_creates: u32,
}

/// Faults of one route. Rates are probabilities in 0..=1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteFaults {
    pub rate_503: f64,
    pub rate_423: f64,
    pub rate_500: f64,
    /// Close the connection without answering (the client sees a transport error).
    pub rate_drop: f64,
    /// Delay added before answering (or dropping).
    pub latency_ms: u64,
    /// The next N calls answer 503.
    pub next_503: u32,
    /// The next N calls answer 423.
    pub next_423: u32,
    /// The next N calls answer 500.
    pub next_500: u32,
    /// The next N calls are dropped.
    pub next_drop: u32,
}

/// What a faulted call gets instead of its real answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    Status(u16),
    Drop,
}

impl Faults {
    /// Decide what happens to one call of `route`: the latency to add and the fault, if any.
    pub(crate) fn decide(&mut self, route: &str, rng: &mut StdRng) -> (Duration, Option<Injected>) {
        let mut latency = 0;
        let mut injected = None;
        for key in [route, "*"] {
            let Some(f) = self.routes.get_mut(key) else {
                continue;
            };
            latency = latency.max(f.latency_ms);
            if injected.is_none() {
                injected = f.take_burst().or_else(|| f.draw(rng));
            }
        }
        (Duration::from_millis(latency), injected)
    }

    /// Whether this create should answer 500 after creating (uses one up).
    pub(crate) fn take_ambiguous_create(&mut self) -> bool {
        take(&mut self.ambiguous_creates)
    }

    /// Whether this create should end `failed` (uses one up).
    pub(crate) fn take_failed_create(&mut self) -> bool {
        take(&mut self.failed_creates)
    }
}

impl RouteFaults {
    fn take_burst(&mut self) -> Option<Injected> {
        if take(&mut self.next_drop) {
            Some(Injected::Drop)
        } else if take(&mut self.next_503) {
            Some(Injected::Status(503))
        } else if take(&mut self.next_423) {
            Some(Injected::Status(423))
        } else if take(&mut self.next_500) {
            Some(Injected::Status(500))
        } else {
            None
        }
    }

    fn draw(&self, rng: &mut StdRng) -> Option<Injected> {
        let total = self.rate_drop + self.rate_503 + self.rate_423 + self.rate_500;
        if total.is_nan() || total <= 0.0 {
            return None;
        }
        let r: f64 = rng.random();
        let mut edge = 0.0;
        for (rate, fault) in [
            (self.rate_drop, Injected::Drop),
            (self.rate_503, Injected::Status(503)),
            (self.rate_423, Injected::Status(423)),
            (self.rate_500, Injected::Status(500)),
        ] {
            edge += rate.max(0.0);
            if r < edge {
                return Some(fault);
            }
        }
        None
    }
}

fn take(count: &mut u32) -> bool {
    if *count > 0 {
        *count -= 1;
        true
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn faults(json: &str) -> Faults {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn bursts_are_used_up_in_order_then_stop() {
        let mut f =
            faults(r#"{"routes":{"GET /appliance":{"next_503":1,"next_drop":1,"next_423":1}}}"#);
        let mut rng = StdRng::seed_from_u64(1);
        let got: Vec<_> = (0..4)
            .map(|_| f.decide("GET /appliance", &mut rng).1)
            .collect();
        assert_eq!(
            got,
            [
                Some(Injected::Drop),
                Some(Injected::Status(503)),
                Some(Injected::Status(423)),
                None
            ]
        );
        assert_eq!(
            f.decide("POST /appliance", &mut rng),
            (Duration::ZERO, None)
        );
    }

    #[test]
    fn wildcard_applies_after_the_route_entry_and_latency_is_the_larger() {
        let mut f = faults(
            r#"{"routes":{"*":{"next_500":1,"latency_ms":5},"GET /appliance":{"latency_ms":9}}}"#,
        );
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            f.decide("GET /appliance", &mut rng),
            (Duration::from_millis(9), Some(Injected::Status(500)))
        );
        assert_eq!(
            f.decide("PUT /appliance/{id}", &mut rng),
            (Duration::from_millis(5), None)
        );
    }

    #[test]
    fn rates_are_reproducible_with_a_seed_and_roughly_right() {
        let run = |seed| {
            let mut f = faults(r#"{"routes":{"*":{"rate_503":0.3,"rate_drop":0.1}}}"#);
            let mut rng = StdRng::seed_from_u64(seed);
            (0..1000)
                .map(|_| f.decide("x", &mut rng).1)
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let n503 = a
            .iter()
            .filter(|x| **x == Some(Injected::Status(503)))
            .count();
        let drops = a.iter().filter(|x| **x == Some(Injected::Drop)).count();
        assert!((200..400).contains(&n503), "{n503}");
        assert!((50..150).contains(&drops), "{drops}");
    }

    #[test]
    fn create_counts_go_down() {
        let mut f = faults(r#"{"ambiguous_creates":1,"failed_creates":2}"#);
        assert!(f.take_ambiguous_create() && !f.take_ambiguous_create());
        assert!(f.take_failed_create() && f.take_failed_create() && !f.take_failed_create());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Faults>(r#"{"rate_503":1}"#).is_err());
    }
}
