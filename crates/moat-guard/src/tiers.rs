//! Account tiers: which tier an account is in, and that tier's parameter policy.

use std::collections::HashMap;
use std::sync::Arc;

use moat_config::{Config, TierConfig};

use crate::params::ParamPolicy;

/// A tier: its name and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The name; `default` for accounts in no configured tier.
    pub name: Arc<str>,
    /// What its requests may ask for.
    pub policy: ParamPolicy,
}

/// Every tier, and the accounts in each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tiers {
    default: Tier,
    named: Vec<Tier>,
    by_account: HashMap<String, usize>,
}

impl Default for Tiers {
    /// Only the `default` tier, with the safe default policy.
    fn default() -> Self {
        Tiers::new(ParamPolicy::default(), &[])
    }
}

impl Tiers {
    /// The `default` tier with `default_policy`, and the configured tiers. The config has already
    /// checked that an account is in at most one tier; should one appear twice, the first wins.
    pub fn new(default_policy: ParamPolicy, tiers: &[TierConfig]) -> Tiers {
        let mut by_account = HashMap::new();
        let named = tiers
            .iter()
            .enumerate()
            .map(|(i, t)| {
                for account in &t.accounts {
                    by_account.entry(account.clone()).or_insert(i);
                }
                Tier {
                    name: Arc::from(t.name.as_str()),
                    policy: ParamPolicy::from(&t.params),
                }
            })
            .collect();
        Tiers {
            default: Tier {
                name: Arc::from(TierConfig::DEFAULT),
                policy: default_policy,
            },
            named,
            by_account,
        }
    }

    /// The tiers of a config: `[params]` for `default`, then each `[[tiers]]`.
    pub fn from_config(config: &Config) -> Tiers {
        Tiers::new(ParamPolicy::from(&config.params), &config.tiers)
    }

    /// The tier `account` is in.
    pub fn of(&self, account: &str) -> &Tier {
        self.by_account
            .get(account)
            .and_then(|&i| self.named.get(i))
            .unwrap_or(&self.default)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_config::ParamsConfig;

    #[test]
    fn accounts_find_their_tier_and_others_are_default() {
        let research = TierConfig {
            name: "research".into(),
            accounts: vec!["acct_1".into(), "acct_2".into()],
            params: ParamsConfig {
                allow_logit_bias_with_logprobs: true,
                ..ParamsConfig::default()
            },
        };
        let tiers = Tiers::new(ParamPolicy::default(), &[research]);
        assert_eq!(&*tiers.of("acct_2").name, "research");
        assert!(tiers.of("acct_2").policy.allow_logit_bias_with_logprobs);
        assert_eq!(&*tiers.of("acct_3").name, "default");
        assert_eq!(tiers.of("acct_3").policy, ParamPolicy::default());
        assert_eq!(&*Tiers::default().of("acct_1").name, "default");
    }
}
