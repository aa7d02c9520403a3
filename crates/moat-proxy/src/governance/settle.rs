//! Settling a request's limits and budgets when it ends, with the usage the provider reported.

use moat_core::{Clock, Money};
use moat_policy::budget::Hold;
use moat_policy::limits::{Admission, RateStatus};
use moat_policy::price::{PriceTable, TokenUsage};
use moat_protocol::usage::Usage;
use std::sync::Arc;

/// What a request holds of its limits and budgets until it ends. Travels on the request record,
/// into a stream's task if it streams; dropped unsettled (a request that never reached a
/// provider) it gives everything back.
pub struct Settlement {
    admission: Option<Admission>,
    hold: Option<Hold>,
    estimated_tokens: u64,
    prices: Arc<PriceTable>,
    clock: Arc<dyn Clock>,
}

impl Settlement {
    pub(super) fn new(
        admission: Option<Admission>,
        hold: Option<Hold>,
        estimated_tokens: u64,
        prices: Arc<PriceTable>,
        clock: Arc<dyn Clock>,
    ) -> Settlement {
        Settlement {
            admission,
            hold,
            estimated_tokens,
            prices,
            clock,
        }
    }

    /// The rate-limit state right after admission, for response headers.
    pub fn rate_status(&self) -> Option<RateStatus> {
        self.admission.as_ref().map(Admission::status)
    }

    /// Ends the request. With the provider's usage, tokens and cost are charged as reported
    /// (at `model`'s price); a success without usage is charged what was reserved, the most it
    /// could have cost; a failure without usage is charged nothing. Returns the cost charged.
    pub fn settle(self, model: Option<&str>, usage: Option<&Usage>, succeeded: bool) -> Money {
        let now = self.clock.now_ms();
        let tokens = match usage {
            Some(u) => Some(u.input_tokens.saturating_add(u.output_tokens)),
            None if succeeded => Some(self.estimated_tokens),
            None => None,
        };
        if let (Some(admission), Some(tokens)) = (self.admission, tokens) {
            admission.settle(now, tokens);
        }
        let cost = match usage {
            Some(u) => model
                .and_then(|m| self.prices.lookup(m))
                .map_or(Money::ZERO, |p| p.cost(&token_usage(u))),
            None if succeeded => self.hold.as_ref().map_or(Money::ZERO, Hold::reserved),
            None => Money::ZERO,
        };
        let Some(hold) = self.hold else {
            return cost;
        };
        if usage.is_none() && !succeeded {
            // Dropped: the reservation is released, nothing is billed.
            return cost;
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
