//! A budget's allowance for a report period: the one rule every spend comparison uses.

use moat_config::Budget;

use crate::period::{Period, DAY_MS};

/// The rule, in words, as the report states it.
pub const RULE: &str = "A budget's allowance for the period is its monthly budget prorated by \
UTC calendar month: each month the period touches contributes monthly × (time covered ÷ the \
month's length), so a whole calendar month gets exactly its monthly budget. A scope with only a \
weekly or daily budget gets weekly × days ÷ 7 or daily × days; with several windows set, the \
smallest allowance counts.";

/// The allowance of `budget` for `period`, in micro-units; `None` when no window is set.
pub fn allowance(budget: &Budget, period: &Period) -> Option<i64> {
    let monthly = budget.monthly.map(|m| {
        period
            .month_overlaps()
            .iter()
            .map(|o| i128::from(m.0) * i128::from(o.covered_ms) / i128::from(o.month_ms.max(1)))
            .sum::<i128>()
    });
    let len = i128::from(period.len_ms());
    let weekly = budget
        .weekly
        .map(|w| i128::from(w.0) * len / i128::from(7 * DAY_MS));
    let daily = budget
        .daily
        .map(|d| i128::from(d.0) * len / i128::from(DAY_MS));
    [monthly, weekly, daily]
        .into_iter()
        .flatten()
        .min()
        .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use moat_core::Money;

    const OCT: i64 = 1_790_812_800_000;

    fn budget(daily: Option<i64>, weekly: Option<i64>, monthly: Option<i64>) -> Budget {
        Budget {
            daily: daily.map(Money),
            weekly: weekly.map(Money),
            monthly: monthly.map(Money),
            ..Budget::default()
        }
    }

    #[test]
    fn a_calendar_month_gets_its_monthly_budget() {
        let oct = Period::new(OCT, OCT + 31 * DAY_MS).unwrap();
        assert_eq!(
            allowance(&budget(None, None, Some(310_000_000)), &oct),
            Some(310_000_000)
        );
        assert_eq!(allowance(&budget(None, None, None), &oct), None);
    }

    #[test]
    fn partial_periods_prorate_and_the_smallest_window_counts() {
        // Ten days of October: 10/31 of the monthly budget.
        let ten = Period::new(OCT, OCT + 10 * DAY_MS).unwrap();
        assert_eq!(
            allowance(&budget(None, None, Some(310_000_000)), &ten),
            Some(100_000_000)
        );
        assert_eq!(
            allowance(&budget(Some(5_000_000), None, Some(310_000_000)), &ten),
            Some(50_000_000)
        );
        assert_eq!(
            allowance(&budget(None, Some(70_000_000), None), &ten),
            Some(100_000_000)
        );
    }
}
