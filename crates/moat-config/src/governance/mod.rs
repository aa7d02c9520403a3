//! `[[workflows]]`, `[[accounts]]`, `[governance]` and `[[prices]]`: the inventory, limits,
//! budgets and prices; `routing` reads `[[routing_rules]]` and `failover` reads `[failover]`.

mod failover;
pub(crate) mod raw;
mod routing;
pub(crate) mod spec;
pub(crate) mod types;

pub(crate) use failover::failover;
pub(crate) use routing::{check, rule, Known};

use moat_core::Money;
use toml::Spanned;

use crate::context::{Ctx, Zero};
use crate::detection::integer;
use crate::document::Element;
use crate::raw::Any;
use crate::sections::{name_ref, named, NameRef};
use raw::{RawAccount, RawBudget, RawGovernance, RawLimits, RawObjectives, RawPrice, RawWorkflow};
use types::{
    AccountConfig, Budget, Criticality, GovernanceConfig, Limits, Objectives, PriceConfig,
    Sensitivity, Unregistered, WorkflowConfig,
};

/// A workflow, plus where its name and model references are written.
pub(crate) struct WorkflowDraft {
    pub config: WorkflowConfig,
    pub name: Option<NameRef>,
    pub models: Vec<NameRef>,
}

/// An account, plus where its name is written.
pub(crate) struct AccountDraft {
    pub config: AccountConfig,
    pub name: Option<NameRef>,
}

/// A price, plus where its model name is written.
pub(crate) struct PriceDraft {
    pub config: PriceConfig,
    pub name: Option<NameRef>,
}

/// The longest workflow name.
pub const MAX_WORKFLOW_NAME_LEN: usize = 64;

/// Checks a workflow name: 1 to 64 ASCII letters, digits, `-`, `_` and `.`, starting with a
/// letter or digit. Names travel into URLs (`/admin/v1/workflows/{name}`), file names of
/// reports, log lines and metric labels, so nothing there may need escaping: no NUL, no `/`,
/// no `..` prefix. `Err` says what is wrong without echoing the name.
pub fn check_workflow_name(name: &str) -> Result<(), String> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let starts_well = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    if name.is_empty() {
        Err("must not be empty".into())
    } else if name.len() > MAX_WORKFLOW_NAME_LEN || !valid_chars || !starts_well {
        Err(format!(
            "must be 1 to {MAX_WORKFLOW_NAME_LEN} letters, digits, '-', '_' or '.', starting with a letter or digit (this one is {} bytes long)",
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// One `[[workflows]]` element.
pub(crate) fn workflow(ctx: &mut Ctx<'_>, e: &Element<RawWorkflow>) -> WorkflowDraft {
    let raw = &e.value;
    let mut name = name_ref(ctx, e, "name", raw.name.as_ref());
    if let Some(n) = &name {
        if let Err(why) = check_workflow_name(&n.name) {
            ctx.errors.push(n.span.clone(), n.field.clone(), why);
            name = None;
        }
    }
    let mut config = WorkflowConfig::new(
        name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        "",
    );
    if let Some(v) = ctx.required(e, "owner", raw.owner.as_ref()) {
        if let Some(owner) = ctx.name(v, &e.field("owner")) {
            config.owner = owner;
        }
    }
    if let Some(v) = &raw.description {
        config.description = ctx.string(v, &e.field("description"));
    }
    if let Some(v) = ctx.required(e, "criticality", raw.criticality.as_ref()) {
        if let Some(c) = criticality(ctx, v, &e.field("criticality")) {
            config.criticality = c;
        }
    }
    if let Some(v) = ctx.required(e, "sensitivity", raw.sensitivity.as_ref()) {
        if let Some(s) = sensitivity(ctx, v, &e.field("sensitivity")) {
            config.sensitivity = s;
        }
    }
    let mut models = Vec::new();
    for (i, m) in raw.models.iter().flatten().enumerate() {
        if let Some(model) = named(ctx, m, format!("{}[{i}]", e.field("models"))) {
            config.models.push(model.name.clone());
            models.push(model);
        }
    }
    config.writes = raw.writes.as_ref().is_some_and(|w| *w.get_ref());
    if let Some(l) = &raw.limits {
        config.limits = limits(ctx, l, &e.field("limits"));
    }
    if let Some(b) = &raw.budget {
        config.budget = budget(ctx, b, &e.field("budget"));
    }
    if let Some(o) = &raw.objectives {
        config.objectives = objectives(ctx, o, &e.field("objectives"));
    }
    WorkflowDraft {
        config,
        name,
        models,
    }
}

/// One `[[accounts]]` element.
pub(crate) fn account(ctx: &mut Ctx<'_>, e: &Element<RawAccount>) -> AccountDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    let mut config = AccountConfig {
        name: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        limits: Limits::default(),
        budget: Budget::default(),
    };
    if let Some(l) = &raw.limits {
        config.limits = limits(ctx, l, &e.field("limits"));
    }
    if let Some(b) = &raw.budget {
        config.budget = budget(ctx, b, &e.field("budget"));
    }
    if raw.limits.is_none() && raw.budget.is_none() && !e.already_reported("limits") {
        let message =
            "an account entry without limits or budget does nothing: add `limits` or `budget`";
        ctx.errors.push(e.span.clone(), e.path.clone(), message);
    }
    AccountDraft { config, name }
}

/// `[governance]`; the defaults when absent.
pub(crate) fn governance(
    ctx: &mut Ctx<'_>,
    element: Option<&Element<RawGovernance>>,
) -> GovernanceConfig {
    let mut out = GovernanceConfig::default();
    let Some(e) = element else {
        return out;
    };
    let raw = &e.value;
    if let Some(v) = &raw.unregistered {
        let field = e.field("unregistered");
        match ctx.string(v, &field).as_deref().map(str::trim) {
            Some("allow") => out.unregistered = Unregistered::Allow,
            Some("flag") => out.unregistered = Unregistered::Flag,
            Some("deny") => out.unregistered = Unregistered::Deny,
            Some(other) => ctx.errors.push(
                Some(v.span()),
                field,
                format!("unknown policy \"{other}\": expected \"allow\", \"flag\" (serve and report) or \"deny\" (refuse with 403)"),
            ),
            None => {}
        }
    }
    if let Some(l) = &raw.key_limits {
        out.key_limits = limits(ctx, l, &e.field("key_limits"));
    }
    if let Some(b) = &raw.key_budget {
        out.key_budget = budget(ctx, b, &e.field("key_budget"));
    }
    if let Some(l) = &raw.account_limits {
        out.account_limits = limits(ctx, l, &e.field("account_limits"));
    }
    if let Some(b) = &raw.account_budget {
        out.account_budget = budget(ctx, b, &e.field("account_budget"));
    }
    if let Some(n) = integer(
        ctx,
        raw.default_output_tokens.as_ref(),
        &e.field("default_output_tokens"),
        1,
        1 << 24,
    ) {
        out.default_output_tokens = n;
    }
    if let Some(n) = integer(
        ctx,
        raw.key_body_bytes_in_flight.as_ref(),
        &e.field("key_body_bytes_in_flight"),
        1,
        1 << 40,
    ) {
        out.key_body_bytes_in_flight = n;
    }
    out
}

/// One `[[prices]]` element.
pub(crate) fn price(ctx: &mut Ctx<'_>, e: &Element<RawPrice>) -> PriceDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "model", raw.model.as_ref());
    let mut config = PriceConfig {
        model: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        input: 0,
        output: 0,
        cached_input: None,
        cache_write: None,
        context_window: None,
        max_output: None,
    };
    let per_mtok = |ctx: &mut Ctx<'_>, key: &str, value: Option<&Any>| {
        value.and_then(|v| amount(ctx, v, &e.field(key)).map(|m| m.0.unsigned_abs()))
    };
    if let Some(v) = ctx.required(e, "input", raw.input.as_ref()) {
        config.input = per_mtok(ctx, "input", Some(v)).unwrap_or(0);
    }
    if let Some(v) = ctx.required(e, "output", raw.output.as_ref()) {
        config.output = per_mtok(ctx, "output", Some(v)).unwrap_or(0);
    }
    config.cached_input = per_mtok(ctx, "cached_input", raw.cached_input.as_ref());
    config.cache_write = per_mtok(ctx, "cache_write", raw.cache_write.as_ref());
    let tokens = 1u64 << 40;
    config.context_window = integer(
        ctx,
        raw.context_window.as_ref(),
        &e.field("context_window"),
        1,
        tokens,
    );
    config.max_output = integer(
        ctx,
        raw.max_output.as_ref(),
        &e.field("max_output"),
        1,
        tokens,
    );
    PriceDraft { config, name }
}

fn criticality(ctx: &mut Ctx<'_>, v: &Spanned<String>, field: &str) -> Option<Criticality> {
    let s = ctx.string(v, field)?;
    let parsed = Criticality::parse(s.trim());
    if parsed.is_none() {
        let message =
            format!("unknown criticality \"{s}\": expected \"low\", \"medium\" or \"high\"");
        ctx.errors.push(Some(v.span()), field, message);
    }
    parsed
}

fn sensitivity(ctx: &mut Ctx<'_>, v: &Spanned<String>, field: &str) -> Option<Sensitivity> {
    let s = ctx.string(v, field)?;
    let parsed = Sensitivity::parse(s.trim());
    if parsed.is_none() {
        let message = format!("unknown sensitivity \"{s}\": expected \"public\", \"internal\", \"confidential\" or \"restricted\"");
        ctx.errors.push(Some(v.span()), field, message);
    }
    parsed
}

/// Criticalities written as a list (routing rules).
pub(crate) fn criticalities(
    ctx: &mut Ctx<'_>,
    list: &[Spanned<String>],
    path: &str,
) -> Vec<Criticality> {
    list.iter()
        .enumerate()
        .filter_map(|(i, v)| criticality(ctx, v, &format!("{path}[{i}]")))
        .collect()
}

/// Sensitivities written as a list (routing rules).
pub(crate) fn sensitivities(
    ctx: &mut Ctx<'_>,
    list: &[Spanned<String>],
    path: &str,
) -> Vec<Sensitivity> {
    list.iter()
        .enumerate()
        .filter_map(|(i, v)| sensitivity(ctx, v, &format!("{path}[{i}]")))
        .collect()
}

fn limits(ctx: &mut Ctx<'_>, raw: &RawLimits, path: &str) -> Limits {
    let field = |k: &str| format!("{path}.{k}");
    let max = 1u64 << 48;
    Limits {
        requests_per_minute: integer(
            ctx,
            raw.requests_per_minute.as_ref(),
            &field("requests_per_minute"),
            1,
            max,
        ),
        tokens_per_minute: integer(
            ctx,
            raw.tokens_per_minute.as_ref(),
            &field("tokens_per_minute"),
            1,
            max,
        ),
        concurrency: integer(
            ctx,
            raw.concurrency.as_ref(),
            &field("concurrency"),
            1,
            u64::from(u32::MAX),
        )
        .map(|n| n as u32),
    }
}

fn budget(ctx: &mut Ctx<'_>, raw: &RawBudget, path: &str) -> Budget {
    let field = |k: &str| format!("{path}.{k}");
    let mut out = Budget::default();
    let positive = |ctx: &mut Ctx<'_>, key: &str, v: Option<&Any>| {
        let v = v?;
        let m = amount(ctx, v, &field(key))?;
        if m == Money::ZERO {
            let message = "must be greater than 0 (leave it out for no budget)";
            ctx.errors.push(Some(v.span()), field(key), message);
            return None;
        }
        Some(m)
    };
    out.daily = positive(ctx, "daily", raw.daily.as_ref());
    out.weekly = positive(ctx, "weekly", raw.weekly.as_ref());
    out.monthly = positive(ctx, "monthly", raw.monthly.as_ref());
    if let Some(p) = integer(
        ctx,
        raw.soft_percent.as_ref(),
        &field("soft_percent"),
        1,
        100,
    ) {
        out.soft_percent = p as u8;
    }
    out
}

fn objectives(ctx: &mut Ctx<'_>, raw: &RawObjectives, path: &str) -> Objectives {
    let field = |k: &str| format!("{path}.{k}");
    Objectives {
        max_latency: raw.max_latency.as_ref().map(|v| {
            ctx.duration(
                Some(v),
                &field("max_latency"),
                std::time::Duration::ZERO,
                Zero::Rejected,
            )
        }),
        max_cost_per_request: raw
            .max_cost_per_request
            .as_ref()
            .and_then(|v| amount(ctx, v, &field("max_cost_per_request"))),
        route_around: raw.route_around.as_ref().is_some_and(|r| *r.get_ref()),
    }
}

/// An amount of money (or a price per million tokens) in currency units: `25`, `0.075` or
/// `"$25.00"`, exact to a micro-unit; `None` after reporting why not.
pub(crate) fn amount(ctx: &mut Ctx<'_>, value: &Any, field: &str) -> Option<Money> {
    let span = Some(value.span());
    let text = match value.get_ref() {
        toml::Value::Integer(i) => i.to_string(),
        // Display prints the shortest form that reads back as the same float, never an exponent.
        toml::Value::Float(f) if f.is_finite() => f.to_string(),
        toml::Value::String(s) => {
            let s = ctx.string(&Spanned::new(value.span(), s.clone()), field)?;
            s.trim().trim_start_matches('$').replace('_', "")
        }
        other => {
            let message = format!(
                "expected an amount such as 25, 0.075 or \"25.00\", found a value of type {}",
                other.type_str()
            );
            ctx.errors.push(span, field, message);
            return None;
        }
    };
    match micros(&text) {
        Ok(m) => Some(Money(m)),
        Err(why) => {
            ctx.errors
                .push(span, field, format!("invalid amount \"{text}\": {why}"));
            None
        }
    }
}

/// Parses a non-negative decimal into micro-units exactly.
pub(crate) fn micros(text: &str) -> Result<i64, &'static str> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err("expected digits");
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a non-negative decimal number such as 25 or 0.075");
    }
    if frac.len() > 6 {
        return Err("more precise than a millionth of the currency unit");
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "too large")?
    };
    let frac_micros: i64 = if frac.is_empty() {
        0
    } else {
        let n: i64 = frac.parse().map_err(|_| "invalid fraction")?;
        n * 10i64.pow(6 - frac.len() as u32)
    };
    whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac_micros))
        .ok_or("too large")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::micros;

    #[test]
    fn amounts_parse_exactly_to_micro_units() {
        assert_eq!(micros("25"), Ok(25_000_000));
        assert_eq!(micros("0.075"), Ok(75_000));
        assert_eq!(micros("2.5"), Ok(2_500_000));
        assert_eq!(micros(".5"), Ok(500_000));
        assert_eq!(micros("0.000001"), Ok(1));
        assert!(micros("0.0000001").is_err());
        assert!(micros("-1").is_err());
        assert!(micros("1e3").is_err());
        assert!(micros("").is_err());
        assert!(micros("99999999999999999").is_err());
    }
}
