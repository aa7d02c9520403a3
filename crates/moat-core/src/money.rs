//! Money as integer micro-units of a currency, so sums never drift.

/// An amount of money in millionths of the currency unit (1 USD = 1_000_000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// Converts a price in currency units per million tokens times a token count into micro-units,
    /// rounding up and clamping at the bounds instead of overflowing.
    pub fn from_per_million(units_per_million: f64, tokens: u64) -> Money {
        // units/1e6 tokens * tokens * 1e6 micro/unit = units_per_million * tokens micro-units.
        let micros = (units_per_million * tokens as f64).ceil();
        Money(clamp_f64(micros))
    }

    /// Adds, saturating at the bounds.
    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }
}

fn clamp_f64(value: f64) -> i64 {
    if value.is_nan() {
        0
    } else if value >= i64::MAX as f64 {
        i64::MAX
    } else if value <= i64::MIN as f64 {
        i64::MIN
    } else {
        value as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_million_price_rounds_up_to_a_micro_unit() {
        // $2.50 per million tokens, 3 tokens = 7.5 micro-dollars, rounded up.
        assert_eq!(Money::from_per_million(2.5, 3), Money(8));
        assert_eq!(Money::from_per_million(f64::NAN, 3), Money(0));
        assert_eq!(Money::from_per_million(f64::INFINITY, 1), Money(i64::MAX));
    }
}
