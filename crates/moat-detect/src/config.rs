//! Detector settings: thresholds and weights, with defaults that are the documented model.

use serde::{Deserialize, Serialize};

/// Weights of each piece of per-request evidence, in units of the CUSUM threshold scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Weights {
    /// Reasoning elicited in the user turn (times the cue strength).
    pub elicit: f32,
    /// Grader / judge / reward-model or prompt-rewrite ask.
    pub grader: f32,
    /// One user turn, no carried answers.
    pub single_turn: f32,
    /// A request carrying conversation history (negative: people talk, harvesters ask).
    pub conversation: f32,
    /// A system prompt from an account that rotates three or more.
    pub system_rotation: f32,
    /// A system prompt shared with other accounts, from an account that uses two or more such.
    pub shared_system: f32,
    /// The account's one fixed system prompt (negative: an app).
    pub fixed_app: f32,
    /// The dominant template of a single-template batch job (negative), applied to elicitation.
    pub batch_template_discount: f32,
    /// A near-duplicate of a prompt the account sent recently (negative: evaluation re-runs).
    pub repeat: f32,
    /// Less than a second after the account's previous request (negative: harness bursts).
    pub burst: f32,
    /// Output at least four times the input.
    pub long_output: f32,
    /// Requests spread over many networks (rotating proxies).
    pub ip_churn: f32,
    /// Account younger than `new_account_days`.
    pub new_account: f32,
    /// Account created in a burst of sign-ups.
    pub signup_burst: f32,
    /// High sustained volume of novel prompts.
    pub volume: f32,
    /// A system prompt or template shared with flagged accounts.
    pub tainted_template: f32,
    /// A network shared with flagged accounts.
    pub tainted_network: f32,
    /// A logit-extraction probe.
    pub logit_probe: f32,
    /// A system-prompt probe (end-user level only).
    pub probe: f32,
    /// A tool declaration from an account whose tool loops never close.
    pub open_tool_loop: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            elicit: 1.2,
            grader: 1.2,
            single_turn: 0.3,
            conversation: -0.8,
            system_rotation: 0.6,
            shared_system: 0.6,
            fixed_app: -0.3,
            batch_template_discount: 0.85,
            repeat: -1.2,
            burst: -0.3,
            long_output: 0.2,
            ip_churn: 0.4,
            new_account: 0.2,
            signup_burst: 0.3,
            volume: 0.5,
            tainted_template: 2.5,
            tainted_network: 0.8,
            logit_probe: 2.0,
            probe: 4.5,
            open_tool_loop: 1.4,
        }
    }
}

/// Detector settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// CUSUM threshold: an account is flagged when its evidence sum reaches this.
    pub threshold: f32,
    /// CUSUM drift: subtracted per request, so occasional cues decay.
    pub drift: f32,
    /// Threshold for end users on keys that pass end-user ids.
    pub end_user_threshold: f32,
    /// Logit probes before an account is flagged on them alone.
    pub logit_probe_min: u32,
    /// Requests in the last 24 hours counted as high volume.
    pub volume_per_day: u32,
    /// Accounts younger than this many days count as new.
    pub new_account_days: u32,
    /// Sign-ups within the same hour that make a burst.
    pub signup_burst_min: u32,
    /// Evidence an end user needs before it counts against its key's account.
    pub end_user_harvest_threshold: f32,
    /// End users flagged for harvesting before their key's account is flagged.
    pub end_users_to_flag_account: u32,
    /// Weights of the evidence.
    pub weights: Weights,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            threshold: 10.0,
            drift: 0.7,
            end_user_threshold: 4.0,
            logit_probe_min: 20,
            volume_per_day: 300,
            new_account_days: 30,
            signup_burst_min: 5,
            end_users_to_flag_account: 3,
            end_user_harvest_threshold: 7.0,
            weights: Weights::default(),
        }
    }
}
