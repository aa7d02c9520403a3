//! Settling a request's limits and budgets when it ends, with the usage the provider reported;
//! and, for a stream whose reservation is not a true upper bound, metering it as it goes.

use moat_core::{Clock, Money};
use moat_policy::budget::{BudgetRefusal, Hold};
use moat_policy::limits::{Admission, RateStatus};
use moat_policy::price::{ModelPrice, PriceTable, TokenUsage};
use moat_protocol::usage::Usage;
use std::sync::Arc;

/// Output tokens' worth a metered stream's hold grows by each time its estimate passes what is
/// reserved: large enough that a long answer takes a lock every few hundred tokens, small enough
/// that a stream near the ceiling does not hold much more than it streams.
const EXTEND_STEP_TOKENS: u64 = 256;

/// What a request holds of its limits and budgets until it ends. Travels on the request record,
/// into a stream's task if it streams; dropped unsettled (a request that never reached a
/// provider) it gives everything back.
pub struct Settlement {
    admission: Option<Admission>,
    hold: Option<Hold>,
    estimated_tokens: u64,
    bounds: Bounds,
    meter: Option<Meter>,
    prices: Arc<PriceTable>,
    clock: Arc<dyn Clock>,
}

/// What the admission's reservation was computed from.
pub(super) struct Bounds {
    /// Upper bound of the input tokens: the body's length.
    pub(super) input: u64,
    /// The client's output cap over all choices, if it set one.
    pub(super) output_cap: Option<u64>,
}

/// A stream metered against its hold: no output cap and no known maximum for the model that
/// answers, so the first reservation (`default_output_tokens`) may be too small.
struct Meter {
    /// The answering model's price.
    price: ModelPrice,
    /// Estimated output tokens that reached the client.
    streamed: u64,
    /// Whether the usage the stream reported is its final count (the stream reached its end).
    final_usage: bool,
}

impl Settlement {
    pub(super) fn new(
        admission: Option<Admission>,
        hold: Option<Hold>,
        estimated_tokens: u64,
        bounds: Bounds,
        prices: Arc<PriceTable>,
        clock: Arc<dyn Clock>,
    ) -> Settlement {
        Settlement {
            admission,
            hold,
            estimated_tokens,
            bounds,
            meter: None,
            prices,
            clock,
        }
    }

    /// The rate-limit state right after admission, for response headers.
    pub fn rate_status(&self) -> Option<RateStatus> {
        self.admission.as_ref().map(Admission::status)
    }

    /// Starts metering a stream answered by `model` if its reservation is not a true upper
    /// bound: a budget applies, the client set no output cap, and the model is priced but its
    /// `max_output` is unknown. Returns whether the stream is metered; if it is, the relay
    /// reports its estimated output with `cover_output` before forwarding each content delta.
    pub(crate) fn meter_stream(&mut self, model: &str) -> bool {
        if self.hold.is_none() || self.bounds.output_cap.is_some() {
            return false;
        }
        let Some(price) = self.prices.lookup(model) else {
            return false;
        };
        if price.max_output.is_some() || price.output == 0 {
            return false;
        }
        self.meter = Some(Meter {
            price: price.clone(),
            streamed: 0,
            final_usage: false,
        });
        true
    }

    /// Makes the hold cover a metered stream's `output` estimated tokens (input at its reserved
    /// bound), extending it by the shortfall plus `EXTEND_STEP_TOKENS`' worth, or, when that is
    /// refused, by the shortfall alone. Refused: the budget cannot pay for that much output and
    /// nothing changed; the caller ends the stream before forwarding it. Not metered: `Ok`.
    pub(crate) fn cover_output(&mut self, output: u64) -> Result<(), BudgetRefusal> {
        let (Some(meter), Some(hold)) = (&mut self.meter, &mut self.hold) else {
            return Ok(());
        };
        let needed = meter.price.max_cost(self.bounds.input, output);
        let shortfall = needed.0.saturating_sub(hold.reserved().0);
        if shortfall > 0 {
            let step = meter.price.max_cost(0, EXTEND_STEP_TOKENS);
            if hold
                .extend(Money(shortfall.saturating_add(step.0)))
                .is_err()
            {
                hold.extend(Money(shortfall))?;
            }
            metrics::counter!("moat_budget_hold_extensions_total").increment(1);
        }
        meter.streamed = output;
        Ok(())
    }

    /// Records that a metered stream forwarded `output` estimated tokens whether or not the hold
    /// covers them (what a held stream sent before metering began); settled up to the hold.
    pub(crate) fn streamed_output(&mut self, output: u64) {
        if let Some(meter) = &mut self.meter {
            meter.streamed = meter.streamed.max(output);
        }
    }

    /// Tells a metered stream whether the usage it will settle with is the provider's final
    /// count (the stream reached its end) or a partial one (cut, broken, abandoned).
    pub(crate) fn final_usage(&mut self, is_final: bool) {
        if let Some(meter) = &mut self.meter {
            meter.final_usage = is_final;
        }
    }

    /// Ends the request. With the provider's usage, tokens and cost are charged as reported
    /// (at `model`'s price), even above the reservation: the provider did the work, and it is
    /// logged and counted as an overrun. A success without usage is charged what was reserved,
    /// the most it could have cost; a failure without usage is charged nothing. A metered stream
    /// that did not reach its final usage (cut by its budget, broken, or abandoned by the client)
    /// is charged its estimate: input at its bound plus the estimated output streamed, at least
    /// what the provider reported so far, at most what is held. Returns the cost charged.
    pub fn settle(self, model: Option<&str>, usage: Option<&Usage>, succeeded: bool) -> Money {
        let now = self.clock.now_ms();
        let reported_cost = |u: &Usage| {
            model
                .and_then(|m| self.prices.lookup(m))
                .map_or(Money::ZERO, |p| p.cost(&token_usage(u)))
        };
        let reported_tokens = |u: &Usage| u.input_tokens.saturating_add(u.output_tokens);
        let reserved = self.hold.as_ref().map_or(Money::ZERO, Hold::reserved);
        let estimate = self
            .meter
            .as_ref()
            .filter(|m| !m.final_usage && m.streamed > 0);
        let (tokens, cost) = match (usage, estimate) {
            (_, Some(m)) => {
                let estimated = m.price.max_cost(self.bounds.input, m.streamed);
                let tokens = (self.bounds.input / 4).saturating_add(m.streamed);
                let (tokens, cost) = match usage {
                    Some(u) => (
                        tokens.max(reported_tokens(u)),
                        estimated.max(reported_cost(u)),
                    ),
                    None => (tokens, estimated),
                };
                (Some(tokens), Some(cost.min(reserved)))
            }
            (Some(u), None) => (Some(reported_tokens(u)), Some(reported_cost(u))),
            (None, None) if succeeded => (Some(self.estimated_tokens), Some(reserved)),
            // Dropped: nothing reached the client; the reservation is released unbilled.
            (None, None) => (None, None),
        };
        if let (Some(admission), Some(tokens)) = (self.admission, tokens) {
            admission.settle(now, tokens);
        }
        let (Some(hold), Some(cost)) = (self.hold, cost) else {
            return cost.unwrap_or(Money::ZERO);
        };
        if cost > reserved {
            // Only a request whose reservation was not a true bound gets here: no output cap
            // and a model without a known `max_output`, answered whole (a stream is metered),
            // or a stream whose estimate fell short of the provider's count.
            let overrun = cost.0.saturating_sub(reserved.0);
            metrics::counter!("moat_budget_overrun_total").increment(1);
            tracing::warn!(
                model = model.unwrap_or(""),
                reserved_micros = reserved.0,
                cost_micros = cost.0,
                overrun_micros = overrun,
                "request cost more than its budget reservation"
            );
        }
        let settled = hold.settle(cost);
        for c in &settled.crossings {
            metrics::counter!("moat_budget_soft_threshold_crossed_total", "scope" => c.scope.as_str(), "period" => c.period.as_str()).increment(1);
            tracing::warn!(scope = %c.scope, id = %c.id, period = c.period.as_str(), soft_micros = c.soft.0, spent_micros = c.spent.0, "budget soft threshold crossed");
        }
        cost
    }
}

/// The provider's usage in the price table's terms: uncached input apart from cache reads and
/// writes (`Usage` counts all of them in `input_tokens`, OpenAI's convention).
fn token_usage(u: &Usage) -> TokenUsage {
    let cached = u.cache_read_tokens.min(u.input_tokens);
    let written = u.cache_write_tokens.min(u.input_tokens - cached);
    TokenUsage {
        input: u.input_tokens - cached - written,
        cached_input: cached,
        cache_write: written,
        output: u.output_tokens,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_core::ManualClock;
    use moat_policy::budget::{BudgetLimit, Ledger, Period};
    use moat_policy::limits::Scope;

    const T0: i64 = 1_780_000_000_000;

    /// One micro-unit an input token (1.25 for cache writes), two an output token.
    fn prices(max_output: Option<u64>) -> Arc<PriceTable> {
        Arc::new(PriceTable::default().with_overrides([ModelPrice {
            model: Arc::from("m"),
            provider: Arc::from("test"),
            input: 1_000_000,
            output: 2_000_000,
            cached_input: None,
            cache_write: None,
            context_window: None,
            max_output,
        }]))
    }

    /// A settlement of 100 input bytes (127 micro-units reserved for them) and 4 output tokens,
    /// against a daily budget of `hard`, without an output cap.
    fn settlement(ledger: &Ledger, hard: i64, max_output: Option<u64>) -> Settlement {
        let id: Arc<str> = Arc::from("k");
        let limits = [BudgetLimit {
            period: Period::Day,
            hard: Money(hard),
            soft: None,
        }];
        let hold = ledger
            .reserve(T0, &[(Scope::Key, &id, &limits)], Money(127 + 8))
            .unwrap();
        Settlement::new(
            None,
            Some(hold),
            29,
            Bounds {
                input: 100,
                output_cap: None,
            },
            prices(max_output),
            Arc::new(ManualClock::new(T0)),
        )
    }

    fn spent(ledger: &Ledger) -> i64 {
        ledger.spent().iter().map(|r| r.spent.0).sum()
    }

    #[test]
    fn only_streams_without_a_true_bound_are_metered() {
        let ledger = Ledger::new();
        assert!(settlement(&ledger, 10_000, None).meter_stream("m"));
        assert!(!settlement(&ledger, 10_000, Some(30)).meter_stream("m"));
        assert!(!settlement(&ledger, 10_000, None).meter_stream("unpriced"));
        let mut capped = settlement(&ledger, 10_000, None);
        capped.bounds.output_cap = Some(10);
        assert!(!capped.meter_stream("m"));
    }

    #[test]
    fn the_hold_grows_in_steps_then_by_the_shortfall_then_refuses() {
        let ledger = Ledger::new();
        let mut s = settlement(&ledger, 127 + 2 * 300, None);
        assert!(s.meter_stream("m"));
        let reserved = |s: &Settlement| s.hold.as_ref().unwrap().reserved().0;
        // Within the first reservation: nothing to do.
        s.cover_output(4).unwrap();
        assert_eq!(reserved(&s), 135);
        // Past it: the shortfall (2 micro-units) and a 256-token step (512).
        s.cover_output(5).unwrap();
        assert_eq!(reserved(&s), 127 + 10 + 512);
        s.cover_output(261).unwrap();
        assert_eq!(reserved(&s), 127 + 10 + 512);
        // Another step no longer fits the budget: only the shortfall.
        s.cover_output(262).unwrap();
        assert_eq!(reserved(&s), 127 + 2 * 262);
        s.cover_output(300).unwrap();
        assert_eq!(reserved(&s), 127 + 2 * 300);
        // Not one token more, and a refusal changes nothing.
        assert!(s.cover_output(301).is_err());
        assert_eq!(reserved(&s), 127 + 2 * 300);
        // Cut there: charged the estimate of what went out, within the budget.
        assert_eq!(s.settle(Some("m"), None, true), Money(127 + 2 * 300));
        assert_eq!(spent(&ledger), 127 + 600);
    }

    #[test]
    fn a_metered_stream_is_charged_its_final_usage_else_its_estimate() {
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 40,
            ..Usage::default()
        };
        let ledger = Ledger::new();
        let mut s = settlement(&ledger, 10_000, None);
        s.meter_stream("m");
        s.cover_output(100).unwrap();
        s.final_usage(true);
        assert_eq!(s.settle(Some("m"), Some(&usage), true), Money(10 + 80));

        // A partial count (cut, broken, abandoned) is topped up to the estimate.
        let mut s = settlement(&ledger, 10_000, None);
        s.meter_stream("m");
        s.cover_output(100).unwrap();
        assert_eq!(s.settle(Some("m"), Some(&usage), true), Money(127 + 200));
        // A client that hung up is charged what was streamed.
        let mut s = settlement(&ledger, 10_000, None);
        s.meter_stream("m");
        s.cover_output(7).unwrap();
        assert_eq!(s.settle(Some("m"), None, false), Money(127 + 14));
        // Nothing streamed, nothing reported, failed: nothing charged.
        let mut s = settlement(&ledger, 10_000, None);
        s.meter_stream("m");
        assert_eq!(s.settle(Some("m"), None, false), Money::ZERO);
        assert_eq!(spent(&ledger), 90 + 327 + 141);
    }

    #[test]
    fn an_answer_above_its_reservation_is_charged_as_reported() {
        let ledger = Ledger::new();
        let s = settlement(&ledger, 10_000, None);
        let usage = Usage {
            input_tokens: 10,
            output_tokens: 500,
            ..Usage::default()
        };
        assert_eq!(s.settle(Some("m"), Some(&usage), true), Money(1_010));
        assert_eq!(spent(&ledger), 1_010);
    }
}
