//! `[detection]`, `[detection.actions]`, `[detection.model]` and `[admin]`: what the gateway does
//! with the distillation detector's verdicts, and who may read them.
//!
//! `[detection.model]` is the detector's own settings; this crate does not know them, so the
//! table is kept as written (only non-finite numbers are refused here) and the gateway
//! deserializes it into the detector's config at startup.

use std::collections::HashSet;

use crate::context::{is_header_value, Ctx};
use crate::document::Element;
use crate::raw::{Any, RawActions, RawAdmin, RawDetection};
use crate::types::{ActionsConfig, AdminConfig, DetectionConfig, DetectionMode, DetectorModel};

/// The `[detection]` section and its sub-tables; the defaults for whatever is absent.
pub(crate) fn detection(
    ctx: &mut Ctx<'_>,
    element: Option<&Element<RawDetection>>,
    actions: Option<&Element<RawActions>>,
    model: Option<&Element<toml::Table>>,
) -> DetectionConfig {
    let mut out = DetectionConfig::default();
    if let Some(e) = element {
        let raw = &e.value;
        if let Some(v) = &raw.mode {
            let field = e.field("mode");
            match ctx.string(v, &field).as_deref().map(str::trim) {
                Some("off") => out.mode = DetectionMode::Off,
                Some("monitor") => out.mode = DetectionMode::Monitor,
                Some("enforce") => out.mode = DetectionMode::Enforce,
                Some(other) => ctx.errors.push(
                    Some(v.span()),
                    field,
                    format!("unknown mode \"{other}\": expected \"off\", \"monitor\" (score and report) or \"enforce\" (score and act)"),
                ),
                None => {}
            }
        }
        let mut seen = HashSet::new();
        for (i, a) in raw.allowlist.iter().flatten().enumerate() {
            let field = format!("{}[{i}]", e.field("allowlist"));
            let Some(account) = ctx.name(a, &field) else {
                continue;
            };
            if seen.insert(account.clone()) {
                out.allowlist.push(account);
            } else {
                let message = format!("duplicate account \"{account}\" in the allowlist");
                ctx.errors.push(Some(a.span()), field, message);
            }
        }
        if let Some(n) = integer(
            ctx,
            raw.queue.as_ref(),
            &e.field("queue"),
            1,
            DetectionConfig::MAX_QUEUE as u64,
        ) {
            out.queue = n as usize;
        }
        let max = DetectionConfig::MAX_END_USERS as u64;
        let total = integer(
            ctx,
            raw.max_end_users.as_ref(),
            &e.field("max_end_users"),
            1,
            max,
        );
        if let Some(n) = total {
            out.max_end_users = n as usize;
        }
        let field = e.field("max_end_users_per_account");
        let per_account = raw.max_end_users_per_account.as_ref();
        if let Some(n) = integer(ctx, per_account, &field, 1, max) {
            out.max_end_users_per_account = n as usize;
        }
        if out.max_end_users_per_account > out.max_end_users {
            let span = per_account.or(raw.max_end_users.as_ref()).map(|v| v.span());
            let message = format!(
                "max_end_users_per_account ({}) is above max_end_users ({}): an account cannot keep more end users than the detector does",
                out.max_end_users_per_account, out.max_end_users
            );
            ctx.errors.push(span, field, message);
        }
    }
    if let Some(e) = actions {
        out.actions = actions_of(ctx, e);
    }
    if let Some(e) = model {
        out.model = DetectorModel {
            table: e.value.clone(),
            line: e.span.as_ref().map(|s| ctx.errors.line_of(s.start)),
        };
        finite(ctx, e, &e.value, &e.path);
    }
    out
}

/// `[admin]`; no token (the admin API off) when absent.
pub(crate) fn admin(ctx: &mut Ctx<'_>, element: Option<&Element<RawAdmin>>) -> AdminConfig {
    let mut out = AdminConfig::default();
    let Some(e) = element else {
        return out;
    };
    if let Some(v) = &e.value.token {
        let field = e.field("token");
        // An empty token (`${MOAT_ADMIN_TOKEN:-}`) means "no admin API", like an empty api_key.
        // The token is a secret: errors say what is wrong without echoing it.
        match ctx.string(v, &field) {
            Some(t) if t.is_empty() => {}
            Some(t) if !is_header_value(&t) || t.contains(' ') => {
                let message = "must not contain spaces, line breaks or other control characters";
                ctx.errors.push(Some(v.span()), field, message);
            }
            Some(t) if t.chars().count() < AdminConfig::MIN_TOKEN_LEN => {
                let message = format!(
                    "is too short: use at least {} characters (for example `openssl rand -hex 32`)",
                    AdminConfig::MIN_TOKEN_LEN
                );
                ctx.errors.push(Some(v.span()), field, message);
            }
            Some(t)
                if AdminConfig::token_guesses_log10(&t) < AdminConfig::MIN_TOKEN_GUESSES_LOG10 =>
            {
                // Length alone lets `aaaaaaaaaaaaaaaa` through: a token must be hard to guess.
                let message = format!(
                    "is too easy to guess (an estimated 10^{:.0} guesses; at least 10^{:.0} are required): use a random token, for example `openssl rand -hex 32`",
                    AdminConfig::token_guesses_log10(&t).floor(),
                    AdminConfig::MIN_TOKEN_GUESSES_LOG10
                );
                ctx.errors.push(Some(v.span()), field, message);
            }
            Some(t) => out.token = Some(moat_core::Secret::new(t)),
            None => {}
        }
    }
    out
}

fn actions_of(ctx: &mut Ctx<'_>, e: &Element<RawActions>) -> ActionsConfig {
    let raw = &e.value;
    let d = ActionsConfig::default();
    let throttle = fraction(ctx, raw.throttle_at.as_ref(), &e.field("throttle_at"));
    let degrade = fraction(ctx, raw.degrade_at.as_ref(), &e.field("degrade_at"));
    let block = fraction(ctx, raw.block_at.as_ref(), &e.field("block_at"));
    let out = ActionsConfig {
        throttle_at: throttle.as_ref().map_or(d.throttle_at, |t| t.0),
        degrade_at: degrade.as_ref().map_or(d.degrade_at, |t| t.0),
        block_at: block.as_ref().map_or(d.block_at, |t| t.0),
        throttle_rpm: integer(
            ctx,
            raw.throttle_rpm.as_ref(),
            &e.field("throttle_rpm"),
            1,
            u64::from(u32::MAX),
        )
        .map_or(d.throttle_rpm, |n| n as u32),
        degrade_max_tokens: integer(
            ctx,
            raw.degrade_max_tokens.as_ref(),
            &e.field("degrade_max_tokens"),
            1,
            u64::from(u32::MAX),
        )
        .unwrap_or(d.degrade_max_tokens),
    };
    // The ladder must climb: each action at or above the one below it. Checked against the
    // values in force, so `block_at = 0.55` alone is caught against the default degrade_at.
    let order = [
        ("throttle_at", out.throttle_at, throttle),
        ("degrade_at", out.degrade_at, degrade),
        ("block_at", out.block_at, block),
    ];
    for pair in order.windows(2) {
        let (low_name, low, low_set) = &pair[0];
        let (high_name, high, high_set) = &pair[1];
        if high < low {
            // Point at the higher one when it is written, else at the lower one.
            let (name, span) = match (high_set, low_set) {
                (Some(h), _) => (high_name, Some(h.1.clone())),
                (None, l) => (low_name, l.as_ref().map(|l| l.1.clone())),
            };
            let message = format!(
                "{high_name} ({high}) is below {low_name} ({low}): each action must start at or above the one before it (throttle, degrade, block)"
            );
            ctx.errors.push(span, e.field(name), message);
        }
    }
    out
}

/// A score threshold in (0, 1], with where it is written; `None` when absent or after an error.
fn fraction(
    ctx: &mut Ctx<'_>,
    value: Option<&Any>,
    field: &str,
) -> Option<(f64, std::ops::Range<usize>)> {
    let value = value?;
    let span = value.span();
    let expected = "expected a score above 0 and at most 1 (0.5 is the detector's threshold; 1 never triggers)";
    let n = match value.get_ref() {
        toml::Value::Float(f) => *f,
        toml::Value::Integer(i) => *i as f64,
        other => {
            let message = format!("{expected}, found a value of type {}", other.type_str());
            ctx.errors.push(Some(span), field, message);
            return None;
        }
    };
    if n.is_finite() && n > 0.0 && n <= 1.0 {
        Some((n, span))
    } else {
        ctx.errors.push(
            Some(span),
            field,
            format!("{n} is out of range: {expected}"),
        );
        None
    }
}

/// An integer in `min..=max`; `None` when absent or after an error.
pub(crate) fn integer(
    ctx: &mut Ctx<'_>,
    value: Option<&Any>,
    field: &str,
    min: u64,
    max: u64,
) -> Option<u64> {
    let value = value?;
    let span = Some(value.span());
    match value.get_ref() {
        toml::Value::Integer(i) => match u64::try_from(*i) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let message = format!("must be between {min} and {max}");
                ctx.errors.push(span, field, message);
                None
            }
        },
        other => {
            let message = format!(
                "expected an integer between {min} and {max}, found a value of type {}",
                other.type_str()
            );
            ctx.errors.push(span, field, message);
            None
        }
    }
}

/// Reports NaN and infinite numbers anywhere in `[detection.model]`: no detector setting means
/// anything with them, and a NaN threshold would silently never flag anyone.
fn finite(ctx: &mut Ctx<'_>, e: &Element<toml::Table>, table: &toml::Table, path: &str) {
    for (key, value) in table {
        let field = format!("{path}.{}", crate::document::key_name(key));
        check_value(ctx, e, value, &field);
    }
}

fn check_value(ctx: &mut Ctx<'_>, e: &Element<toml::Table>, value: &toml::Value, field: &str) {
    match value {
        toml::Value::Float(f) if !f.is_finite() => {
            // The plain table has no spans; the top-level key's line is close enough.
            let top = field
                .strip_prefix(&format!("{}.", e.path))
                .and_then(|rest| rest.split(['.', '[']).next())
                .unwrap_or_default();
            let span = e.key_span(top);
            ctx.errors
                .push(span, field, format!("{f} is not a finite number"));
        }
        toml::Value::Table(t) => finite(ctx, e, t, field),
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_value(ctx, e, v, &format!("{field}[{i}]"));
            }
        }
        _ => {}
    }
}
