//! Request filters and parameter policy, stage 4 of the request path: blocked-pattern lists run
//! over a request's system texts and user-side turns, and the sampling parameters an account's
//! tier may use.
//!
//! The crate is pure apart from reading pattern files once, at startup ([`Guard::from_config`]).
//! It reads requests only through [`moat_protocol::view::RequestView`], so the body that goes
//! upstream is never rebuilt.

pub mod filter;
pub mod params;
pub mod patterns;
pub mod tiers;

pub use filter::{FilterOutcome, FilterSet, Hit, Part, REGEX_SIZE_LIMIT};
pub use params::{ParamPolicy, ParamViolation};
pub use patterns::{GuardError, PatternError};
pub use tiers::{Tier, Tiers};

use moat_config::Config;

/// Everything stage 4 needs, built once from the config.
#[derive(Debug, Default)]
pub struct Guard {
    /// The compiled filters.
    pub filters: FilterSet,
    /// The tiers and their parameter policies.
    pub tiers: Tiers,
}

impl Guard {
    /// Loads and compiles every filter's pattern file and builds the tiers; the error lists every
    /// problem in every file, each with its file and line.
    pub fn from_config(config: &Config) -> Result<Guard, GuardError> {
        Ok(Guard {
            filters: FilterSet::compile(&config.filters)?,
            tiers: Tiers::from_config(config),
        })
    }
}
