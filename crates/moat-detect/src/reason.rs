//! The kinds of evidence, and how each reads in a verdict.

/// One kind of evidence; its index keys the per-account contribution sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Reason {
    /// Reasoning elicited.
    Elicit,
    /// Grader or rewrite asks.
    Grader,
    /// Single-turn requests.
    SingleTurn,
    /// Rotating system prompts.
    SystemRotation,
    /// Long outputs.
    LongOutput,
    /// Many networks.
    IpChurn,
    /// New account.
    NewAccount,
    /// Sign-up burst.
    SignupBurst,
    /// High volume of novel prompts.
    Volume,
    /// Templates shared with flagged accounts.
    TaintedTemplate,
    /// Networks shared with flagged accounts.
    TaintedNetwork,
    /// Logit-extraction probes.
    LogitProbe,
    /// System-prompt probes.
    Probe,
    /// Tool declarations without tool results.
    OpenToolLoops,
    /// End users behind the key flagged for harvesting.
    FlaggedEndUsers,
}

/// Number of reason kinds.
pub const REASONS: usize = 15;

impl Reason {
    /// Every kind, in index order.
    pub const ALL: [Reason; REASONS] = [
        Reason::Elicit,
        Reason::Grader,
        Reason::SingleTurn,
        Reason::SystemRotation,
        Reason::LongOutput,
        Reason::IpChurn,
        Reason::NewAccount,
        Reason::SignupBurst,
        Reason::Volume,
        Reason::TaintedTemplate,
        Reason::TaintedNetwork,
        Reason::LogitProbe,
        Reason::Probe,
        Reason::OpenToolLoops,
        Reason::FlaggedEndUsers,
    ];

    /// A stable machine name.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Elicit => "reasoning_elicitation",
            Reason::Grader => "grader_or_rewrite_asks",
            Reason::SingleTurn => "single_turn",
            Reason::SystemRotation => "system_prompt_rotation",
            Reason::LongOutput => "long_outputs",
            Reason::IpChurn => "network_churn",
            Reason::NewAccount => "new_account",
            Reason::SignupBurst => "signup_burst",
            Reason::Volume => "sustained_volume",
            Reason::TaintedTemplate => "template_shared_with_flagged",
            Reason::TaintedNetwork => "network_shared_with_flagged",
            Reason::LogitProbe => "logit_extraction_probes",
            Reason::Probe => "system_prompt_probes",
            Reason::OpenToolLoops => "tool_loops_never_closed",
            Reason::FlaggedEndUsers => "end_users_flagged",
        }
    }
}
