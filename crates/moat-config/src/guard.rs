//! `[[filters]]`, `[params]` and `[[tiers]]`: blocked-pattern lists and the parameter policy of
//! each account tier, checked field by field and then against each other.
//!
//! Pattern files are not opened here (this crate reads only the config file); `moat-guard`
//! loads and compiles them at startup and names the file and line of any error.

use std::collections::HashMap;

use toml::Spanned;

use crate::context::Ctx;
use crate::document::Element;
use crate::error::Errors;
use crate::raw::{Any, RawFilter, RawParams, RawTier};
use crate::references::first_definitions;
use crate::sections::{name_ref, named, resolve, NameRef};
use crate::types::{AppliesTo, FilterAction, FilterConfig, ParamsConfig, TierConfig};

/// A filter, plus where its name and its tier references are written.
pub(crate) struct FilterDraft {
    pub config: FilterConfig,
    pub name: Option<NameRef>,
    pub tiers: Vec<NameRef>,
}

/// A tier, plus where its name and accounts are written.
pub(crate) struct TierDraft {
    pub config: TierConfig,
    pub name: Option<NameRef>,
    pub accounts: Vec<NameRef>,
}

/// One `[[filters]]` element.
pub(crate) fn filter(ctx: &mut Ctx<'_>, e: &Element<RawFilter>) -> FilterDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    let mut config = FilterConfig::new(
        name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
        "",
        FilterAction::Block,
    );
    if let Some(v) = ctx.required(e, "file", raw.file.as_ref()) {
        if let Some(path) = ctx.name(v, &e.field("file")) {
            config.file = resolve(ctx, &path);
        }
    }
    if let Some(v) = ctx.required(e, "action", raw.action.as_ref()) {
        let field = e.field("action");
        match ctx.string(v, &field).as_deref() {
            Some("block") => config.action = FilterAction::Block,
            Some("flag") => config.action = FilterAction::Flag,
            Some(other) => ctx.errors.push(
                Some(v.span()),
                field,
                format!("unknown action \"{other}\": expected \"block\" (refuse with 403) or \"flag\" (pass, count and record)"),
            ),
            None => {}
        }
    }
    if let Some(list) = &raw.applies_to {
        config.applies_to = applies_to(ctx, list, &e.field("applies_to"));
    }
    let mut tiers = Vec::new();
    for (i, t) in raw.tiers.iter().flatten().enumerate() {
        if let Some(tier) = named(ctx, t, format!("{}[{i}]", e.field("tiers"))) {
            config.tiers.push(tier.name.clone());
            tiers.push(tier);
        }
    }
    for (i, w) in raw.workflows.iter().flatten().enumerate() {
        if let Some(workflow) = ctx.name(w, &format!("{}[{i}]", e.field("workflows"))) {
            config.workflows.push(workflow);
        }
    }
    FilterDraft {
        config,
        name,
        tiers,
    }
}

fn applies_to(ctx: &mut Ctx<'_>, list: &Spanned<Vec<Spanned<String>>>, path: &str) -> AppliesTo {
    let mut out = AppliesTo {
        system: false,
        user: false,
    };
    if list.get_ref().is_empty() {
        let message = "must name \"system\", \"user\" or both (leave it out for both)";
        ctx.errors.push(Some(list.span()), path, message);
        return AppliesTo::default();
    }
    for (i, v) in list.get_ref().iter().enumerate() {
        let field = format!("{path}[{i}]");
        match ctx.string(v, &field).as_deref() {
            Some("system") => out.system = true,
            Some("user") => out.user = true,
            Some(other) => ctx.errors.push(
                Some(v.span()),
                field,
                format!("unknown part \"{other}\": expected \"system\" or \"user\""),
            ),
            None => {}
        }
    }
    out
}

/// `[params]`: the `default` tier's policy; the safe defaults when absent.
pub(crate) fn params(ctx: &mut Ctx<'_>, element: Option<&Element<RawParams>>) -> ParamsConfig {
    match element {
        Some(e) => params_over(ctx, &e.value, &e.path, &ParamsConfig::default()),
        None => ParamsConfig::default(),
    }
}

/// One `[[tiers]]` element; fields its `params` leaves out come from `base` (`[params]`).
pub(crate) fn tier(ctx: &mut Ctx<'_>, e: &Element<RawTier>, base: &ParamsConfig) -> TierDraft {
    let raw = &e.value;
    let name = name_ref(ctx, e, "name", raw.name.as_ref());
    if let Some(n) = name.as_ref().filter(|n| n.name == TierConfig::DEFAULT) {
        let message = "the tier \"default\" holds every account in no other tier; set its policy in [params] instead";
        ctx.errors.push(n.span.clone(), n.field.clone(), message);
    }
    let params = match &raw.params {
        Some(p) => params_over(ctx, p, &e.field("params"), base),
        None => base.clone(),
    };
    let mut accounts = Vec::new();
    for (i, a) in raw.accounts.iter().flatten().enumerate() {
        accounts.extend(named(ctx, a, format!("{}[{i}]", e.field("accounts"))));
    }
    TierDraft {
        config: TierConfig {
            name: name.as_ref().map(|n| n.name.clone()).unwrap_or_default(),
            accounts: accounts.iter().map(|a| a.name.clone()).collect(),
            params,
        },
        name,
        accounts,
    }
}

fn params_over(
    ctx: &mut Ctx<'_>,
    raw: &RawParams,
    path: &str,
    base: &ParamsConfig,
) -> ParamsConfig {
    let field = |key: &str| format!("{path}.{key}");
    let flag = |v: &Option<Spanned<bool>>, base: bool| v.as_ref().map_or(base, |b| *b.get_ref());
    ParamsConfig {
        max_top_logprobs: cap(
            ctx,
            raw.max_top_logprobs.as_ref(),
            &field("max_top_logprobs"),
            base.max_top_logprobs,
            0,
        ),
        max_n: cap(ctx, raw.max_n.as_ref(), &field("max_n"), base.max_n, 1),
        max_tokens: cap(
            ctx,
            raw.max_tokens.as_ref(),
            &field("max_tokens"),
            base.max_tokens,
            1,
        ),
        allow_logit_bias_with_logprobs: flag(
            &raw.allow_logit_bias_with_logprobs,
            base.allow_logit_bias_with_logprobs,
        ),
        allow_prompt_logprobs: flag(&raw.allow_prompt_logprobs, base.allow_prompt_logprobs),
        strip_reasoning: flag(&raw.strip_reasoning, base.strip_reasoning),
    }
}

/// A cap: an integer of at least `min`, or `"unlimited"` (`None`); `base` when absent or after
/// reporting an error.
fn cap(
    ctx: &mut Ctx<'_>,
    value: Option<&Any>,
    field: &str,
    base: Option<u64>,
    min: u64,
) -> Option<u64> {
    let Some(value) = value else {
        return base;
    };
    let span = Some(value.span());
    let expected = format!("expected an integer of at least {min}, or \"unlimited\"");
    let number = match value.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(s) => {
            let Some(s) = ctx.string(&Spanned::new(value.span(), s.clone()), field) else {
                return base;
            };
            if s.trim() == "unlimited" {
                return None;
            }
            match s.trim().parse::<u64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    ctx.errors
                        .push(span, field, format!("invalid value \"{s}\": {expected}"));
                    return base;
                }
            }
        }
        other => {
            let message = format!("{expected}, found a value of type {}", other.type_str());
            ctx.errors.push(span, field, message);
            return base;
        }
    };
    match number {
        Some(n) if n >= min => Some(n),
        _ => {
            ctx.errors.push(
                span,
                field,
                format!("must be at least {min} (or \"unlimited\")"),
            );
            base
        }
    }
}

/// Duplicate filter and tier names, accounts in two tiers, filters naming unknown tiers.
///
/// `all_tiers_named` is false when some tier could not be read or has no name: its error is
/// already reported, and "unknown tier" errors would then be noise.
pub(crate) fn check(
    errors: &mut Errors<'_>,
    filters: &[FilterDraft],
    tiers: &[TierDraft],
    all_tiers_named: bool,
) {
    first_definitions(errors, filters.iter().map(|f| &f.name), "filter");
    let tier_names = first_definitions(errors, tiers.iter().map(|t| &t.name), "tier");

    let mut account_tier: HashMap<&str, (&str, Option<usize>)> = HashMap::new();
    for tier in tiers {
        let Some(tier_name) = tier.name.as_ref() else {
            continue;
        };
        for account in &tier.accounts {
            let line = account.span.as_ref().map(|s| errors.line_of(s.start));
            match account_tier.get(account.name.as_str()) {
                Some((other, first)) if *other != tier_name.name => {
                    let at = first.map(|l| format!(" on line {l}")).unwrap_or_default();
                    let message = format!(
                        "account \"{}\" is already in tier \"{other}\"{at}; an account is in one tier",
                        account.name
                    );
                    errors.push(account.span.clone(), account.field.clone(), message);
                }
                Some(_) => {
                    let message = format!("duplicate account \"{}\" in this tier", account.name);
                    errors.push(account.span.clone(), account.field.clone(), message);
                }
                None => {
                    account_tier.insert(account.name.as_str(), (tier_name.name.as_str(), line));
                }
            }
        }
    }

    for filter in filters {
        for r in &filter.tiers {
            let known = r.name == TierConfig::DEFAULT || tier_names.contains_key(r.name.as_str());
            if all_tiers_named && !known {
                let message = format!(
                    "unknown tier \"{}\": expected \"default\" or a name from [[tiers]]",
                    r.name
                );
                errors.push(r.span.clone(), r.field.clone(), message);
            }
        }
    }
}
