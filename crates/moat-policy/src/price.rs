//! Model prices: the table shipped in `data/prices.toml`, operator overrides, model-name lookup,
//! and the cost of a request in integer micro-units.

use moat_core::Money;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The price table shipped with moat.
const BUILTIN: &str = include_str!("../data/prices.toml");

/// Micro-units per whole currency unit, and tokens per priced unit ("per million tokens").
const MILLION: u128 = 1_000_000;

/// Highest price accepted, in USD per million tokens: anything above is a typo.
const MAX_USD_PER_MTOK: f64 = 100_000.0;

/// Why a price table could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The text is not TOML of the expected shape.
    #[error("price table is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    /// A price is negative, not a number, or absurdly large.
    #[error("price table entry {model}: {field} must be a USD amount from 0 to {MAX_USD_PER_MTOK} per million tokens, got {value}")]
    Invalid {
        /// The model whose entry is wrong.
        model: String,
        /// The field that is wrong.
        field: &'static str,
        /// The value found.
        value: f64,
    },
}

/// Prices of one model, in micro-USD per million tokens (so $2.50 is `2_500_000`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    /// The model name as the provider spells it (`gpt-4o`, `claude-sonnet-4-5`).
    pub model: Arc<str>,
    /// The provider (`openai`, `anthropic`, `google`, ...).
    pub provider: Arc<str>,
    /// Uncached input.
    pub input: u64,
    /// Output, reasoning tokens included.
    pub output: u64,
    /// Input read from the provider's prompt cache; `None` = the input price.
    pub cached_input: Option<u64>,
    /// Input written to the prompt cache; `None` = 1.25 times the input price (Anthropic's
    /// five-minute cache write), rounded up.
    pub cache_write: Option<u64>,
    /// Context window in tokens, where known.
    pub context_window: Option<u64>,
    /// Most output tokens per request, where known.
    pub max_output: Option<u64>,
}

/// Tokens of one request, split by how they are priced. `input` excludes cached and
/// cache-write tokens: the caller converts each protocol's usage (OpenAI's `prompt_tokens`
/// include cached tokens; Anthropic's `input_tokens` exclude cache reads and writes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Uncached input tokens.
    pub input: u64,
    /// Input tokens read from the prompt cache.
    pub cached_input: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
    /// Output tokens, reasoning included.
    pub output: u64,
}

/// Prices by model name.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<Arc<str>, ModelPrice>,
}

impl From<&moat_config::PriceConfig> for ModelPrice {
    /// An operator's `[[prices]]` entry (provider recorded as `config`).
    fn from(p: &moat_config::PriceConfig) -> Self {
        ModelPrice {
            model: Arc::from(p.model.as_str()),
            provider: Arc::from("config"),
            input: p.input,
            output: p.output,
            cached_input: p.cached_input,
            cache_write: p.cache_write,
            context_window: p.context_window,
            max_output: p.max_output,
        }
    }
}

impl ModelPrice {
    /// The cost of `usage`. Each part is `ceil(tokens * price / 1_000_000)` micro-units, rounded up
    /// on its own so no part is ever undercharged, then summed; the total saturates at the
    /// largest `Money`.
    pub fn cost(&self, usage: &TokenUsage) -> Money {
        let total = part(usage.input, self.input)
            + part(usage.cached_input, self.cached_input_price())
            + part(usage.cache_write, self.cache_write_price())
            + part(usage.output, self.output);
        clamp_money(total)
    }

    /// An upper bound for a request to reserve before it is sent: every input token at the
    /// dearest input rate (uncached, cache read or cache write), every output token at the
    /// output rate, plus two micro-units because `cost` rounds up each of up to three input
    /// parts on its own. `cost` of any usage within the bounds never exceeds it.
    pub fn max_cost(&self, input_upper_bound: u64, output_upper_bound: u64) -> Money {
        let dearest_input = self
            .input
            .max(self.cached_input_price())
            .max(self.cache_write_price());
        let split_rounding = if input_upper_bound > 0 { 2 } else { 0 };
        let input = part(input_upper_bound, dearest_input) + split_rounding;
        clamp_money(input + part(output_upper_bound, self.output))
    }

    /// The cache-read price, defaulting to the input price.
    pub fn cached_input_price(&self) -> u64 {
        self.cached_input.unwrap_or(self.input)
    }

    /// The cache-write price, defaulting to 1.25 times the input price, rounded up.
    pub fn cache_write_price(&self) -> u64 {
        self.cache_write.unwrap_or_else(|| {
            let scaled = (u128::from(self.input) * 5).div_ceil(4);
            u64::try_from(scaled).unwrap_or(u64::MAX)
        })
    }
}

impl PriceTable {
    /// The table shipped in the crate (`data/prices.toml`).
    pub fn builtin() -> Result<PriceTable, PriceError> {
        PriceTable::from_toml(BUILTIN)
    }

    /// Parses a table in the format of `data/prices.toml`: one TOML table per model.
    pub fn from_toml(text: &str) -> Result<PriceTable, PriceError> {
        let raw: BTreeMap<String, RawPrice> = toml::from_str(text)?;
        let mut models = HashMap::with_capacity(raw.len());
        for (name, entry) in raw {
            let price = entry.into_price(&name)?;
            models.insert(Arc::clone(&price.model), price);
        }
        Ok(PriceTable { models })
    }

    /// This table with `overrides` added, replacing entries of the same model name.
    pub fn with_overrides(mut self, overrides: impl IntoIterator<Item = ModelPrice>) -> PriceTable {
        for price in overrides {
            self.models.insert(Arc::clone(&price.model), price);
        }
        self
    }

    /// The price of `model`: the exact name first; else the name without a `provider/` prefix;
    /// else the longest table name that the model name starts with followed by `-`
    /// (`gpt-4o-2024-08-06` is priced as `gpt-4o`, `gpt-4o-mini-2024-07-18` as `gpt-4o-mini`).
    /// Allocates nothing.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        if let Some(price) = self.models.get(model) {
            return Some(price);
        }
        let bare = model.split_once('/').map_or(model, |(_, rest)| rest);
        if let Some(price) = self.models.get(bare) {
            return Some(price);
        }
        bare.rmatch_indices('-')
            .find_map(|(dash, _)| self.models.get(&bare[..dash]))
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &ModelPrice> {
        self.models.values()
    }

    /// How many models the table prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table prices no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// Converts a price in USD per million tokens into micro-USD per million tokens, rounded to the
/// nearest micro-unit (exact for prices written with up to six decimals, such as 0.075).
pub fn usd_to_micros(usd: f64) -> Option<u64> {
    if !usd.is_finite() || !(0.0..=MAX_USD_PER_MTOK).contains(&usd) {
        return None;
    }
    // In range, so the rounded product is a non-negative integer below 2^53 and converts exactly.
    Some((usd * 1_000_000.0).round() as u64)
}

/// One entry of the TOML table, prices in USD per million tokens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    provider: String,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    cache_write: Option<f64>,
    context_window: Option<u64>,
    max_output: Option<u64>,
}

impl RawPrice {
    fn into_price(self, model: &str) -> Result<ModelPrice, PriceError> {
        let micros = |field: &'static str, value: f64| {
            usd_to_micros(value).ok_or_else(|| PriceError::Invalid {
                model: model.to_owned(),
                field,
                value,
            })
        };
        Ok(ModelPrice {
            model: Arc::from(model),
            provider: Arc::from(self.provider),
            input: micros("input", self.input)?,
            output: micros("output", self.output)?,
            cached_input: self
                .cached_input
                .map(|v| micros("cached_input", v))
                .transpose()?,
            cache_write: self
                .cache_write
                .map(|v| micros("cache_write", v))
                .transpose()?,
            context_window: self.context_window,
            max_output: self.max_output,
        })
    }
}

/// `ceil(tokens * micros_per_million / 1_000_000)`, exact in u128.
fn part(tokens: u64, micros_per_million: u64) -> u128 {
    (u128::from(tokens) * u128::from(micros_per_million)).div_ceil(MILLION)
}

fn clamp_money(micros: u128) -> Money {
    Money(i64::try_from(micros).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn price(model: &str, input: u64, output: u64) -> ModelPrice {
        ModelPrice {
            model: Arc::from(model),
            provider: Arc::from("test"),
            input,
            output,
            cached_input: None,
            cache_write: None,
            context_window: None,
            max_output: None,
        }
    }

    #[test]
    fn the_builtin_table_parses_and_every_entry_is_sane() {
        let table = PriceTable::builtin().unwrap();
        assert!(table.len() >= 40, "{}", table.len());
        for p in table.iter() {
            let name = &p.model;
            assert!(p.input > 0 && p.output > 0, "{name}");
            assert!(p.output >= p.input, "{name}: output cheaper than input");
            if let Some(cached) = p.cached_input {
                assert!(cached > 0 && cached <= p.input, "{name}: cached_input");
            }
            if let Some(write) = p.cache_write {
                assert!(write >= p.input, "{name}: cache_write");
            }
            if let (Some(window), Some(max)) = (p.context_window, p.max_output) {
                assert!(max <= window, "{name}: max_output above context_window");
            }
            assert!(!p.provider.is_empty(), "{name}");
        }
        // TOML itself rejects a table defined twice; check the names were not merely similar.
        let headers = BUILTIN.lines().filter(|l| l.starts_with("[\"")).count();
        assert_eq!(headers, table.len());
    }

    #[test]
    fn known_prices_are_converted_exactly() {
        let table = PriceTable::builtin().unwrap();
        let mini = table.lookup("gpt-4o-mini").unwrap();
        assert_eq!(mini.cached_input, Some(75_000));
        assert_eq!(mini.input, 150_000);
        let gpt4o = table.lookup("gpt-4o").unwrap();
        assert_eq!((gpt4o.input, gpt4o.output), (2_500_000, 10_000_000));
        let sonnet = table.lookup("claude-sonnet-4-5").unwrap();
        assert_eq!(sonnet.cache_write, Some(3_750_000));
    }

    #[test]
    fn decimal_usd_converts_to_the_nearest_micro_unit() {
        assert_eq!(usd_to_micros(0.075), Some(75_000));
        assert_eq!(usd_to_micros(2.5), Some(2_500_000));
        assert_eq!(usd_to_micros(0.005), Some(5_000));
        assert_eq!(usd_to_micros(1.1), Some(1_100_000));
        assert_eq!(usd_to_micros(0.0), Some(0));
        assert_eq!(usd_to_micros(-1.0), None);
        assert_eq!(usd_to_micros(f64::NAN), None);
        assert_eq!(usd_to_micros(1e9), None);
    }

    #[test]
    fn invalid_entries_are_refused_with_their_name() {
        let err = PriceTable::from_toml("[m]\nprovider = \"x\"\ninput = -1\noutput = 2\n");
        let message = err.unwrap_err().to_string();
        assert!(message.contains("entry m: input"), "{message}");
        assert!(PriceTable::from_toml("[m]\nprovider = \"x\"\ninput = 1\n").is_err());
        assert!(
            PriceTable::from_toml("[m]\nprovider = \"x\"\ninput = 1\noutput = 2\nbatch = 1\n")
                .is_err()
        );
        // Integers are prices too.
        let table = PriceTable::from_toml("[m]\nprovider = \"x\"\ninput = 1\noutput = 2\n");
        assert_eq!(table.unwrap().lookup("m").unwrap().output, 2_000_000);
    }

    #[test]
    fn lookup_prefers_exact_then_bare_then_the_longest_dashed_prefix() {
        let table = PriceTable::default().with_overrides([
            price("gpt-4o", 2_500_000, 10_000_000),
            price("gpt-4o-mini", 150_000, 600_000),
            price("gpt-4o-2024-05-13", 5_000_000, 15_000_000),
            price("openrouter/special", 1, 1),
        ]);
        let name = |model: &str| table.lookup(model).map(|p| &*p.model);
        assert_eq!(name("gpt-4o"), Some("gpt-4o"));
        assert_eq!(name("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(name("gpt-4o-2024-05-13"), Some("gpt-4o-2024-05-13"));
        assert_eq!(name("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
        assert_eq!(name("openai/gpt-4o-mini"), Some("gpt-4o-mini"));
        assert_eq!(name("azure/gpt-4o-2024-11-20"), Some("gpt-4o"));
        assert_eq!(name("openrouter/special"), Some("openrouter/special"));
        // A prefix must end at a dash: `gpt-4omni` is not `gpt-4o`.
        assert_eq!(name("gpt-4omni"), None);
        assert_eq!(name("gpt-4"), None);
        assert_eq!(name(""), None);
    }

    #[test]
    fn builtin_lookup_resolves_dated_snapshots() {
        let table = PriceTable::builtin().unwrap();
        let name = |model: &str| table.lookup(model).map(|p| &*p.model);
        assert_eq!(
            name("claude-sonnet-4-5-20250929"),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(name("claude-opus-4-1-20250805"), Some("claude-opus-4-1"));
        assert_eq!(name("claude-opus-4-5-20251101"), Some("claude-opus-4-5"));
        assert_eq!(name("claude-3-5-haiku-latest"), Some("claude-3-5-haiku"));
        assert_eq!(name("o3-mini-2025-01-31"), Some("o3-mini"));
        assert_eq!(name("o3-2025-04-16"), Some("o3"));
        assert_eq!(name("gpt-4.1-mini-2025-04-14"), Some("gpt-4.1-mini"));
        assert_eq!(name("models/gemini-2.5-flash"), Some("gemini-2.5-flash"));
    }

    #[test]
    fn overrides_replace_builtin_entries() {
        let table = PriceTable::builtin()
            .unwrap()
            .with_overrides([price("gpt-4o", 1, 2), price("my-local-model", 3, 4)]);
        assert_eq!(table.lookup("gpt-4o-2024-08-06").unwrap().input, 1);
        assert_eq!(table.lookup("my-local-model").unwrap().output, 4);
    }

    #[test]
    fn cost_rounds_each_part_up_to_a_micro_unit() {
        let mut p = price("m", 2_500_000, 10_000_000);
        p.cached_input = Some(1_250_000);
        // 3 tokens at $2.50/M = 7.5 micro -> 8; 1 cached at $1.25/M = 1.25 -> 2;
        // 1 cache write at 1.25 * $2.50/M = 3.125 -> 4; 1 output at $10/M = 10.
        let usage = TokenUsage {
            input: 3,
            cached_input: 1,
            cache_write: 1,
            output: 1,
        };
        assert_eq!(p.cost(&usage), Money(8 + 2 + 4 + 10));
        let million = TokenUsage {
            input: 1_000_000,
            output: 1_000_000,
            ..TokenUsage::default()
        };
        assert_eq!(p.cost(&million), Money(12_500_000));
        assert_eq!(p.cost(&TokenUsage::default()), Money(0));
    }

    #[test]
    fn missing_cache_prices_default_to_input_and_one_and_a_quarter_input() {
        let p = price("m", 3_000_001, 15_000_000);
        assert_eq!(p.cached_input_price(), 3_000_001);
        assert_eq!(p.cache_write_price(), 3_750_002);
    }

    #[test]
    fn cost_saturates_instead_of_overflowing() {
        let p = price("m", u64::MAX, u64::MAX);
        let usage = TokenUsage {
            input: u64::MAX,
            cached_input: u64::MAX,
            cache_write: u64::MAX,
            output: u64::MAX,
        };
        assert_eq!(p.cost(&usage), Money(i64::MAX));
        assert_eq!(p.max_cost(u64::MAX, u64::MAX), Money(i64::MAX));
    }

    #[test]
    fn max_cost_bounds_every_split_of_the_same_tokens() {
        let table = PriceTable::builtin().unwrap();
        for p in table.iter() {
            let bound = p.max_cost(10_000, 2_000);
            for (input, cached, write) in [
                (10_000, 0, 0),
                (0, 10_000, 0),
                (0, 0, 10_000),
                (1, 2, 9_997),
            ] {
                let usage = TokenUsage {
                    input,
                    cached_input: cached,
                    cache_write: write,
                    output: 2_000,
                };
                assert!(p.cost(&usage) <= bound, "{}", p.model);
            }
        }
    }
}
