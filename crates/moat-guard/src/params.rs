//! The parameter policy of an account tier: which sampling and output parameters a request may
//! use. The defaults close the known logit-extraction routes for untrusted clients: logit bias
//! together with log probabilities (Carlini et al. 2024, "Stealing Part of a Production Language
//! Model"; Finlayson et al. 2024, "Logits of API-Protected LLMs Leak Proprietary Information"),
//! prompt log probabilities, and wide `top_logprobs`.

use moat_config::ParamsConfig;
use moat_protocol::view::Params;

/// Which parameters a tier may use: the tier's `[params]` (`None` caps are unlimited), with the
/// check that applies them. Dereferences to the config it wraps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamPolicy(pub ParamsConfig);

impl std::ops::Deref for ParamPolicy {
    type Target = ParamsConfig;

    fn deref(&self) -> &ParamsConfig {
        &self.0
    }
}

/// A parameter the policy does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamViolation {
    /// The request field at fault (the `param` of an OpenAI error).
    pub param: &'static str,
    /// A stable code: `logit_bias_with_logprobs`, `top_logprobs_cap`, `n_cap`, `max_tokens_cap`,
    /// `prompt_logprobs` or `reasoning`.
    pub reason: &'static str,
    /// What is not allowed and what the limit is, for the client.
    pub message: String,
}

impl From<&ParamsConfig> for ParamPolicy {
    fn from(c: &ParamsConfig) -> Self {
        ParamPolicy(c.clone())
    }
}

impl ParamPolicy {
    /// A policy that allows everything (trusted internal tiers, tests).
    pub fn unrestricted() -> Self {
        ParamPolicy(ParamsConfig {
            max_top_logprobs: None,
            max_n: None,
            max_tokens: None,
            allow_logit_bias_with_logprobs: true,
            allow_prompt_logprobs: true,
            strip_reasoning: false,
        })
    }

    /// The first rule `params` breaks, checked in a fixed order: the extraction combinations
    /// first, then the caps, then reasoning.
    pub fn check(&self, params: &Params) -> Result<(), ParamViolation> {
        if params.prompt_logprobs && !self.allow_prompt_logprobs {
            return Err(violation(
                "prompt_logprobs",
                "prompt_logprobs",
                "log probabilities of the prompt (echo with logprobs, or prompt_logprobs) are not allowed for this account".into(),
            ));
        }
        let wants_logprobs = params.logprobs || params.top_logprobs.is_some_and(|k| k > 0);
        if params.logit_bias_entries > 0 && wants_logprobs && !self.allow_logit_bias_with_logprobs {
            return Err(violation(
                "logit_bias",
                "logit_bias_with_logprobs",
                "logit_bias together with logprobs or top_logprobs is not allowed for this account; send one or the other".into(),
            ));
        }
        if let Some(message) = over("top_logprobs", params.top_logprobs, self.max_top_logprobs) {
            return Err(violation("top_logprobs", "top_logprobs_cap", message));
        }
        if let Some(message) = over("n", params.n, self.max_n) {
            return Err(violation("n", "n_cap", message));
        }
        if let Some(message) = over("max_tokens", params.max_tokens, self.max_tokens) {
            return Err(violation("max_tokens", "max_tokens_cap", message));
        }
        if params.reasoning_requested && self.strip_reasoning {
            return Err(violation(
                "reasoning",
                "reasoning",
                "reasoning output (thinking, reasoning, reasoning_effort) is not allowed for this account; send the request without it".into(),
            ));
        }
        Ok(())
    }
}

fn violation(param: &'static str, reason: &'static str, message: String) -> ParamViolation {
    ParamViolation {
        param,
        reason,
        message,
    }
}

/// The message when `value` is above `cap`.
fn over(name: &str, value: Option<u64>, cap: Option<u64>) -> Option<String> {
    let (value, cap) = (value?, cap?);
    (value > cap).then(|| format!("{name} is {value}, but this account may ask for at most {cap}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn reason(policy: &ParamPolicy, params: Params) -> Option<&'static str> {
        policy.check(&params).err().map(|v| v.reason)
    }

    #[test]
    fn defaults_are_the_safe_ones() {
        let p = ParamPolicy::default();
        assert_eq!(p.max_top_logprobs, Some(5));
        assert_eq!(p.max_n, Some(8));
        assert_eq!(p.max_tokens, None);
        assert!(!p.allow_logit_bias_with_logprobs);
        assert!(!p.allow_prompt_logprobs);
        assert!(!p.strip_reasoning);
        assert_eq!(reason(&p, Params::default()), None);
    }

    #[test]
    fn logit_bias_with_logprobs_is_refused_unless_allowed() {
        let p = ParamPolicy::default();
        let bias = |logprobs: bool, top: Option<u64>| Params {
            logit_bias_entries: 3,
            logprobs,
            top_logprobs: top,
            ..Params::default()
        };
        assert_eq!(
            reason(&p, bias(true, None)),
            Some("logit_bias_with_logprobs")
        );
        assert_eq!(
            reason(&p, bias(false, Some(2))),
            Some("logit_bias_with_logprobs")
        );
        assert_eq!(reason(&p, bias(false, Some(0))), None);
        assert_eq!(reason(&p, bias(false, None)), None);
        let v = p.check(&bias(true, Some(1))).unwrap_err();
        assert_eq!(v.param, "logit_bias");
        assert!(v.message.contains("logit_bias together with logprobs"));
        let allowed = ParamPolicy(ParamsConfig {
            allow_logit_bias_with_logprobs: true,
            ..ParamsConfig::default()
        });
        assert_eq!(reason(&allowed, bias(true, Some(5))), None);
        // Log probabilities alone are fine.
        let logprobs_only = Params {
            logprobs: true,
            top_logprobs: Some(3),
            ..Params::default()
        };
        assert_eq!(reason(&p, logprobs_only), None);
    }

    #[test]
    fn caps_say_the_limit() {
        let p = ParamPolicy(ParamsConfig {
            max_tokens: Some(1000),
            ..ParamsConfig::default()
        });
        let v = p
            .check(&Params {
                top_logprobs: Some(6),
                logprobs: true,
                ..Params::default()
            })
            .unwrap_err();
        assert_eq!((v.param, v.reason), ("top_logprobs", "top_logprobs_cap"));
        assert_eq!(
            v.message,
            "top_logprobs is 6, but this account may ask for at most 5"
        );
        assert_eq!(
            reason(
                &p,
                Params {
                    top_logprobs: Some(5),
                    ..Params::default()
                }
            ),
            None
        );
        let v = p
            .check(&Params {
                n: Some(9),
                ..Params::default()
            })
            .unwrap_err();
        assert_eq!((v.param, v.reason), ("n", "n_cap"));
        assert!(v.message.contains("at most 8"));
        let v = p
            .check(&Params {
                max_tokens: Some(1001),
                ..Params::default()
            })
            .unwrap_err();
        assert_eq!((v.param, v.reason), ("max_tokens", "max_tokens_cap"));
        assert!(v.message.contains("at most 1000"));
        assert_eq!(
            reason(
                &ParamPolicy::default(),
                Params {
                    max_tokens: Some(u64::MAX),
                    ..Params::default()
                }
            ),
            None
        );
    }

    #[test]
    fn prompt_logprobs_and_reasoning() {
        let p = ParamPolicy::default();
        let prompt = Params {
            prompt_logprobs: true,
            ..Params::default()
        };
        assert_eq!(reason(&p, prompt.clone()), Some("prompt_logprobs"));
        let allowed = ParamPolicy(ParamsConfig {
            allow_prompt_logprobs: true,
            ..ParamsConfig::default()
        });
        assert_eq!(reason(&allowed, prompt), None);

        let thinking = Params {
            reasoning_requested: true,
            ..Params::default()
        };
        assert_eq!(reason(&p, thinking.clone()), None);
        let strict = ParamPolicy(ParamsConfig {
            strip_reasoning: true,
            ..ParamsConfig::default()
        });
        let v = strict.check(&thinking).unwrap_err();
        assert_eq!((v.param, v.reason), ("reasoning", "reasoning"));
    }

    #[test]
    fn unrestricted_allows_everything() {
        let all = Params {
            max_tokens: Some(1 << 40),
            n: Some(1000),
            logprobs: true,
            top_logprobs: Some(1000),
            logit_bias_entries: 300,
            prompt_logprobs: true,
            reasoning_requested: true,
            ..Params::default()
        };
        assert_eq!(reason(&ParamPolicy::unrestricted(), all), None);
    }
}
