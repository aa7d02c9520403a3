//! `[failover]`: retries, backoff, the retry budget, circuit breakers and timeouts by criticality.

use std::time::Duration;

use crate::context::{Ctx, Zero};
use crate::detection::integer;
use crate::document::Element;
use crate::governance::raw::{RawFailover, RawTimeouts};
use crate::governance::types::{FailoverConfig, Timeouts};
use crate::raw::Any;

/// `[failover]`; the defaults when absent.
pub(crate) fn failover(
    ctx: &mut Ctx<'_>,
    element: Option<&Element<RawFailover>>,
) -> FailoverConfig {
    let mut out = FailoverConfig::default();
    let Some(e) = element else {
        return out;
    };
    let raw = &e.value;
    if let Some(n) = integer(ctx, raw.retries.as_ref(), &e.field("retries"), 0, 10) {
        out.retries = n as u32;
    }
    out.backoff_base = ctx.duration(
        raw.backoff_base.as_ref(),
        &e.field("backoff_base"),
        out.backoff_base,
        Zero::Allowed,
    );
    out.backoff_max = ctx.duration(
        raw.backoff_max.as_ref(),
        &e.field("backoff_max"),
        out.backoff_max,
        Zero::Allowed,
    );
    if out.backoff_max < out.backoff_base {
        let message = format!(
            "backoff_max ({:?}) is below backoff_base ({:?})",
            out.backoff_max, out.backoff_base
        );
        ctx.errors
            .push(e.key_span("backoff_max"), e.field("backoff_max"), message);
    }
    out.max_retry_wait = ctx.duration(
        raw.max_retry_wait.as_ref(),
        &e.field("max_retry_wait"),
        out.max_retry_wait,
        Zero::Allowed,
    );
    if let Some(n) = integer(
        ctx,
        raw.retry_budget_percent.as_ref(),
        &e.field("retry_budget_percent"),
        0,
        1000,
    ) {
        out.retry_budget_percent = n as u32;
    }
    if let Some(n) = integer(
        ctx,
        raw.retry_budget_min_per_second.as_ref(),
        &e.field("retry_budget_min_per_second"),
        0,
        1_000_000,
    ) {
        out.retry_budget_min_per_second = n as u32;
    }
    if let Some(b) = &raw.breaker {
        let path = e.field("breaker");
        let field = |k: &str| format!("{path}.{k}");
        if let Some(n) = integer(
            ctx,
            b.failure_threshold.as_ref(),
            &field("failure_threshold"),
            0,
            1_000_000,
        ) {
            out.breaker.failure_threshold = n as u32;
        }
        out.breaker.open_for = ctx.duration(
            b.open_for.as_ref(),
            &field("open_for"),
            out.breaker.open_for,
            Zero::Rejected,
        );
        if let Some(n) = integer(ctx, b.close_after.as_ref(), &field("close_after"), 1, 1000) {
            out.breaker.close_after = n as u32;
        }
    }
    if let Some(t) = &raw.timeouts {
        let path = e.field("timeouts");
        for (i, level) in [&t.low, &t.medium, &t.high].into_iter().enumerate() {
            if let Some(level) = level {
                let name = ["low", "medium", "high"][i];
                out.timeouts[i] = timeouts(ctx, level, &format!("{path}.{name}"));
            }
        }
    }
    out
}

fn timeouts(ctx: &mut Ctx<'_>, raw: &RawTimeouts, path: &str) -> Timeouts {
    let mut one = |v: Option<&Any>, key: &str| {
        v.map(|v| {
            ctx.duration(
                Some(v),
                &format!("{path}.{key}"),
                Duration::ZERO,
                Zero::Rejected,
            )
        })
        .filter(|d| !d.is_zero())
    };
    Timeouts {
        connect: one(raw.connect.as_ref(), "connect"),
        first_byte: one(raw.first_byte.as_ref(), "first_byte"),
        first_token: one(raw.first_token.as_ref(), "first_token"),
        stream_idle: one(raw.stream_idle.as_ref(), "stream_idle"),
        total: one(raw.total.as_ref(), "total"),
    }
}
