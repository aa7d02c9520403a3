//! The PostgreSQL schema a store lives in: a checked name, safe to splice into SQL.

use crate::error::PostgresError;

/// A schema name: 1 to 63 of `a-z`, `0-9` and `_`, not starting with a digit. Checked once, so
/// it can go into identifiers and connection options without quoting surprises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema(String);

impl Schema {
    /// The schema moat uses unless told otherwise.
    pub const DEFAULT: &'static str = "moat";

    /// Checks `name`.
    pub fn new(name: &str) -> Result<Self, PostgresError> {
        let ok = (1..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && name.bytes().next().is_some_and(|b| !b.is_ascii_digit());
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(PostgresError::Schema(name.to_string()))
        }
    }

    /// The bare name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier.
    pub(crate) fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl Default for Schema {
    fn default() -> Self {
        Self(Self::DEFAULT.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_identifiers_are_schemas() {
        for good in ["moat", "moat_test_1", "_x", &"a".repeat(63)] {
            assert_eq!(Schema::new(good).unwrap().name(), good);
        }
        for bad in [
            "",
            "1moat",
            "Moat",
            "moat-x",
            "m\"oat",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(Schema::new(bad).is_err(), "{bad:?}");
        }
    }
}
