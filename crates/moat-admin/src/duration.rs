//! Durations in admin API bodies: a humantime string (`"24h"`, `"90m"`) or whole seconds.

use std::time::Duration;

/// Why a duration in a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Neither a humantime string nor a non-negative whole number of seconds.
    #[error("'{field}' must be a duration such as \"24h\" or a whole number of seconds")]
    Invalid {
        /// The body field.
        field: &'static str,
    },
}

/// Reads `value` (the body field `field`) as a duration.
pub fn parse_duration_value(
    field: &'static str,
    value: &serde_json::Value,
) -> Result<Duration, DurationError> {
    let invalid = DurationError::Invalid { field };
    match value {
        serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs).ok_or(invalid),
        serde_json::Value::String(s) => humantime::parse_duration(s.trim()).map_err(|_| invalid),
        _ => Err(invalid),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_seconds_are_read_and_the_rest_refused() {
        let d = |v| parse_duration_value("grace", &v);
        assert_eq!(d(json!("24h")), Ok(Duration::from_secs(86_400)));
        assert_eq!(d(json!(" 90m ")), Ok(Duration::from_secs(5_400)));
        assert_eq!(d(json!(60)), Ok(Duration::from_secs(60)));
        assert_eq!(d(json!(0)), Ok(Duration::ZERO));
        for bad in [json!(-1), json!(1.5), json!("soon"), json!(null), json!([])] {
            assert_eq!(d(bad), Err(DurationError::Invalid { field: "grace" }));
        }
    }
}
