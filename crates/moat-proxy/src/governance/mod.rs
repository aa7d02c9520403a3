//! The governance stages of the request path: the workflow inventory and routing policy
//! (`policy`), then rate limits and money budgets (`admit`), settled when the request ends
//! (`settle`).
//!
//! Limits and budgets are counted per key, per workflow and per account, in memory (`moat-policy`
//! `Limiter` and `Ledger`); the price table is the built-in one with the config's `[[prices]]` on
//! top.

pub mod headers;
pub mod inventory;
mod settle;
pub mod view;

pub use inventory::{Inventory, Source};
pub use moat_policy::inflight::{BodyBudget, BodyHold};
pub use settle::Settlement;

use settle::Bounds;

use crate::body::BodyPeek;
use crate::error::GatewayError;
use crate::routing::Target;
use moat_config::{
    AccountConfig, Budget, Config, GovernanceConfig, Limits, Unregistered, WorkflowConfig,
};
use moat_core::{Clock, Money};
use moat_policy::budget::{BudgetLimit, Ledger, Period};
use moat_policy::limits::{Admission, Limiter, RateLimits, Scope};
use moat_policy::price::{ModelPrice, PriceError, PriceTable};
use moat_policy::routing::{Decision, Facts, Rules};
use moat_policy::KeyRecord;
use std::collections::HashMap;
use std::sync::Arc;

/// The inventory, the routing rules, and the counters of every limit and budget.
pub struct Governance {
    /// Registered workflows: the config file's and the store's.
    pub inventory: Inventory,
    accounts: HashMap<String, AccountConfig>,
    defaults: GovernanceConfig,
    rules: Rules,
    limiter: Limiter,
    ledger: Ledger,
    prices: Arc<PriceTable>,
    clock: Arc<dyn Clock>,
    bodies: BodyBudget,
}

/// Who a request is, for policy: its key's workflow as registered.
pub struct Principal<'a> {
    /// The key.
    pub key: &'a KeyRecord,
    /// The account's tier.
    pub tier: &'a str,
    /// The key's workflow, when registered.
    pub workflow: Option<&'a WorkflowConfig>,
}

impl Governance {
    /// Builds the inventory, rules and price table from `config`.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Result<Governance, PriceError> {
        let overrides = config.prices.iter().map(ModelPrice::from);
        let prices = PriceTable::builtin()?.with_overrides(overrides);
        Ok(Governance {
            inventory: Inventory::new(&config.workflows),
            accounts: config
                .accounts
                .iter()
                .map(|a| (a.name.clone(), a.clone()))
                .collect(),
            defaults: config.governance.clone(),
            rules: Rules::new(config.routing_rules.clone()),
            limiter: Limiter::new(),
            ledger: Ledger::new(),
            prices: Arc::new(prices),
            clock,
            bodies: BodyBudget::new(config.governance.key_body_bytes_in_flight),
        })
    }

    /// The registered workflow called `name`.
    pub fn workflow(&self, name: &str) -> Option<Arc<WorkflowConfig>> {
        self.inventory.get(name)
    }

    /// The price of a provider's model, if the table or the config knows it.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.prices.lookup(model)
    }

    /// The routing rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Inventory and policy, before routing: unregistered traffic, the workflow's own model
    /// list, then the routing rules. Returns the rules' decision.
    pub fn policy<'a>(
        &'a self,
        who: &Principal<'a>,
        model: &'a str,
        header: &'a dyn Fn(&str) -> Option<&'a str>,
    ) -> Result<Decision<'a>, GatewayError> {
        match (who.workflow, self.defaults.unregistered) {
            (None, Unregistered::Deny) => {
                return Err(GatewayError::Unregistered {
                    workflow: who.key.workflow.clone(),
                })
            }
            (None, Unregistered::Flag) => {
                metrics::counter!("moat_unregistered_requests_total").increment(1);
                tracing::warn!(key = %who.key.id, account = %who.key.account, workflow = ?who.key.workflow, "request from a key without a registered workflow");
            }
            _ => {}
        }
        if let Some(w) = who.workflow {
            if !w.models.is_empty() && !w.models.iter().any(|m| m == model) {
                return Err(GatewayError::WorkflowModel {
                    workflow: w.name.clone(),
                    model: model.to_string(),
                });
            }
        }
        let facts = Facts {
            account: &who.key.account,
            tier: who.tier,
            workflow: who.workflow,
            model,
            header,
        };
        let decision = self.rules.decide(&facts);
        if let (Some(message), Some(rule)) = (decision.deny, decision.rule) {
            return Err(GatewayError::PolicyDenied {
                rule: rule.name.clone(),
                message: message.to_string(),
            });
        }
        Ok(decision)
    }

    /// The budget of body bytes in flight per key (`governance.key_body_bytes_in_flight`).
    pub fn bodies(&self) -> &BodyBudget {
        &self.bodies
    }

    /// Admission before the body is read: the key's, workflow's and account's requests per
    /// minute and concurrency, all or nothing (`None` when none of them has a limit). The
    /// tokens per minute need the body's size and are reserved by [`Governance::admit`], which
    /// takes this admission over.
    pub fn admit_entry(&self, who: &Principal<'_>) -> Result<Option<Admission>, GatewayError> {
        let ids = Ids::of(who);
        let rates = self.rates_of(who);
        let limits = rates.checks(&ids);
        if limits.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now_ms();
        self.limiter
            .admit_entry(now, &limits)
            .map(Some)
            .map_err(|refusal| GatewayError::RateLimited {
                refusal,
                at_ms: now,
            })
    }

    /// Limits and budgets: completes the request's admission against its key's, workflow's and
    /// account's rate limits (`entry`, from [`Governance::admit_entry`]: the tokens per minute
    /// now; without it, every limit at once) and reserves its worst-case cost in their budgets,
    /// all or nothing. `plans` are every target it may reach (its route, its context
    /// fallbacks); the reservation prices it at the dearest, so no fallback can cost more than
    /// was reserved.
    pub fn admit(
        &self,
        who: &Principal<'_>,
        peek: &BodyPeek,
        body_len: usize,
        plans: &[&[Target]],
        entry: Option<Admission>,
    ) -> Result<Settlement, GatewayError> {
        let now = self.clock.now_ms();
        let ids = Ids::of(who);
        let account = self.accounts.get(&who.key.account);
        let rates = self.rates_of(who);
        let limits = rates.checks(&ids);

        // The client's cap over all `n` choices, when it set one: the only output bound that
        // holds for every target.
        let cap = peek.max_output.map(|cap| cap.saturating_mul(peek.choices));
        let output = cap.unwrap_or_else(|| {
            self.defaults
                .default_output_tokens
                .saturating_mul(peek.choices)
        });
        // About four bytes of JSON per prompt token: an estimate for the token rate, settled
        // with the provider's count when the request ends.
        let estimated_tokens = (body_len as u64 / 4).saturating_add(output);
        let refused = |refusal| GatewayError::RateLimited {
            refusal,
            at_ms: now,
        };
        let admission = match entry {
            _ if limits.is_empty() => None,
            Some(mut entry) => {
                entry
                    .reserve_tokens(now, &limits, estimated_tokens)
                    .map_err(refused)?;
                Some(entry)
            }
            None => Some(
                self.limiter
                    .admit(now, &limits, estimated_tokens)
                    .map_err(refused)?,
            ),
        };

        let key_budget = budget_limits(&self.defaults.key_budget);
        let account_budget =
            budget_limits(account.map_or(&self.defaults.account_budget, |a| &a.budget));
        let workflow_budget = who.workflow.map(|w| budget_limits(&w.budget));
        let mut budgets: Vec<(Scope, &Arc<str>, &[BudgetLimit])> = Vec::with_capacity(3);
        if !key_budget.is_empty() {
            budgets.push((Scope::Key, &ids.key, &key_budget));
        }
        if let (Some(id), Some(b)) = (&ids.workflow, &workflow_budget) {
            if !b.is_empty() {
                budgets.push((Scope::Workflow, id, b));
            }
        }
        if !account_budget.is_empty() {
            budgets.push((Scope::Account, &ids.account, &account_budget));
        }
        let hold = if budgets.is_empty() {
            None
        } else {
            // A prompt token is at least one byte of the body, so the body's length bounds the
            // input from above; the output is bounded by its cap, else by each target's own
            // maximum (see `output_bound`).
            let worst = self.worst_cost(plans, body_len as u64, cap, peek.choices);
            Some(
                self.ledger
                    .reserve(now, &budgets, worst)
                    .map_err(GatewayError::BudgetExceeded)?,
            )
        };
        Ok(Settlement::new(
            admission,
            hold,
            estimated_tokens,
            Bounds {
                input: body_len as u64,
                output_cap: cap,
            },
            Arc::clone(&self.prices),
            Arc::clone(&self.clock),
        ))
    }

    /// The highest cost of a request of `input` tokens with output `cap` (over all choices) on
    /// any target of `plans` (unpriced targets cost nothing).
    fn worst_cost(&self, plans: &[&[Target]], input: u64, cap: Option<u64>, choices: u64) -> Money {
        plans
            .iter()
            .flat_map(|p| p.iter())
            .filter_map(|t| self.prices.lookup(&t.model))
            .map(|p| p.max_cost(input, self.output_bound(p, cap, choices)))
            .max()
            .unwrap_or(Money::ZERO)
    }

    /// The output tokens reserved for a request on a target priced `price`: the client's cap;
    /// without one, the most the model can produce (`max_output`, times `n`), which is a true
    /// upper bound; only for a model whose maximum is unknown `default_output_tokens`, which is
    /// not, so that stream is metered as it goes (`Settlement::cover_output`).
    ///
    /// The trade-off of reserving a model's maximum: a request without a cap holds that much
    /// (e.g. 64k output tokens) for as long as it runs, so near the ceiling it is refused although
    /// its answer would likely fit; a client that wants the last cents of a budget sets
    /// `max_tokens`. In exchange a budget is never overrun by an answer longer than expected.
    fn output_bound(&self, price: &ModelPrice, cap: Option<u64>, choices: u64) -> u64 {
        cap.unwrap_or_else(|| {
            price
                .max_output
                .unwrap_or(self.defaults.default_output_tokens)
                .saturating_mul(choices)
        })
    }
}

/// The ids of a request's principals.
struct Ids {
    key: Arc<str>,
    account: Arc<str>,
    workflow: Option<Arc<str>>,
}

impl Ids {
    fn of(who: &Principal<'_>) -> Ids {
        Ids {
            key: Arc::from(who.key.id.as_str()),
            account: Arc::from(who.key.account.as_str()),
            workflow: who.workflow.map(|w| Arc::from(w.name.as_str())),
        }
    }
}

/// The rate limits of a request's principals.
struct Rates {
    key: RateLimits,
    account: RateLimits,
    workflow: Option<RateLimits>,
}

impl Rates {
    /// The principals that have a limit, key first, for the limiter.
    fn checks<'a>(&'a self, ids: &'a Ids) -> Vec<(Scope, &'a Arc<str>, &'a RateLimits)> {
        let mut limits = Vec::with_capacity(3);
        push_limits(&mut limits, Scope::Key, &ids.key, &self.key);
        if let (Some(id), Some(l)) = (&ids.workflow, &self.workflow) {
            push_limits(&mut limits, Scope::Workflow, id, l);
        }
        push_limits(&mut limits, Scope::Account, &ids.account, &self.account);
        limits
    }
}

impl Governance {
    fn rates_of(&self, who: &Principal<'_>) -> Rates {
        let account = self.accounts.get(&who.key.account);
        Rates {
            key: rate_limits(&self.defaults.key_limits),
            account: rate_limits(account.map_or(&self.defaults.account_limits, |a| &a.limits)),
            workflow: who.workflow.map(|w| rate_limits(&w.limits)),
        }
    }
}

fn rate_limits(l: &Limits) -> RateLimits {
    RateLimits {
        requests_per_minute: l.requests_per_minute,
        tokens_per_minute: l.tokens_per_minute,
        concurrency: l.concurrency,
    }
}

fn push_limits<'a>(
    out: &mut Vec<(Scope, &'a Arc<str>, &'a RateLimits)>,
    scope: Scope,
    id: &'a Arc<str>,
    limits: &'a RateLimits,
) {
    if *limits != RateLimits::default() {
        out.push((scope, id, limits));
    }
}

fn budget_limits(b: &Budget) -> Vec<BudgetLimit> {
    let soft = |hard: Money| {
        let percent = i64::from(b.soft_percent);
        (percent < 100).then(|| Money(hard.0 / 100 * percent + hard.0 % 100 * percent / 100))
    };
    [
        (Period::Day, b.daily),
        (Period::Week, b.weekly),
        (Period::Month, b.monthly),
    ]
    .into_iter()
    .filter_map(|(period, hard)| {
        hard.map(|hard| BudgetLimit {
            period,
            hard,
            soft: soft(hard),
        })
    })
    .collect()
}
