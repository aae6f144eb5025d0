//! Price table: what one token of each kind costs for each Claude model, and the dollar cost of a
//! session's [`Usage`]. Pure; used by the agent (to write `status.usage.costUSD`) and by the
//! controller (to count spend when an older status has tokens but no cost).
//!
//! Models are matched by the longest configured prefix, so `claude-sonnet-4-5` covers
//! `claude-sonnet-4-5-20250929`. Overrides (`--model-prices`, chart `budget.modelPrices`) are JSON:
//! `{"claude-sonnet-4-5": {"input": 3, "output": 15, "cacheWrite": 3.75, "cacheRead": 0.3}}`,
//! dollars per million tokens, replacing or adding entries of the defaults.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::incident::Usage;

/// Dollars per million tokens of each kind, for one model.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    pub input: f64,
    pub output: f64,
    /// Prompt-cache writes (5-minute cache).
    pub cache_write: f64,
    pub cache_read: f64,
}

impl ModelPrice {
    const fn new(input: f64, output: f64, cache_write: f64, cache_read: f64) -> Self {
        Self {
            input,
            output,
            cache_write,
            cache_read,
        }
    }

    /// The dollar cost of `usage` at this price.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, per_million: f64| tokens as f64 * per_million / 1_000_000.0;
        per_token(usage.input_tokens, self.input)
            + per_token(usage.output_tokens, self.output)
            + per_token(usage.cache_write_tokens, self.cache_write)
            + per_token(usage.cache_read_tokens, self.cache_read)
    }
}

/// Anthropic's list prices (USD per million tokens) for the current Claude models; cache writes
/// are the 5-minute cache's 1.25× input, cache reads 0.1× input.
const DEFAULT_PRICES: &[(&str, ModelPrice)] = &[
    ("claude-opus-4-5", ModelPrice::new(5.0, 25.0, 6.25, 0.50)),
    ("claude-opus-4-1", ModelPrice::new(15.0, 75.0, 18.75, 1.50)),
    ("claude-opus-4", ModelPrice::new(15.0, 75.0, 18.75, 1.50)),
    ("claude-sonnet-4", ModelPrice::new(3.0, 15.0, 3.75, 0.30)),
    ("claude-3-7-sonnet", ModelPrice::new(3.0, 15.0, 3.75, 0.30)),
    ("claude-haiku-4-5", ModelPrice::new(1.0, 5.0, 1.25, 0.10)),
    ("claude-3-5-haiku", ModelPrice::new(0.80, 4.0, 1.0, 0.08)),
];

/// Why a price table override was refused.
#[derive(Debug, thiserror::Error)]
pub enum PriceTableError {
    #[error(
        "model prices are not a JSON object of model -> {{input, output, cacheWrite, cacheRead}}"
    )]
    Parse(#[source] serde_json::Error),
    #[error("model price for {model:?} has a negative or non-finite value")]
    Invalid { model: String },
}

/// Prices by model-id prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceTable {
    prices: BTreeMap<String, ModelPrice>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self {
            prices: DEFAULT_PRICES
                .iter()
                .map(|(model, price)| (model.to_string(), *price))
                .collect(),
        }
    }
}

impl PriceTable {
    /// The defaults with `overrides_json` (empty: none) laid over them.
    pub fn with_overrides(overrides_json: &str) -> Result<Self, PriceTableError> {
        let mut table = Self::default();
        if overrides_json.trim().is_empty() {
            return Ok(table);
        }
        let overrides: BTreeMap<String, ModelPrice> =
            serde_json::from_str(overrides_json).map_err(PriceTableError::Parse)?;
        for (model, price) in overrides {
            let values = [
                price.input,
                price.output,
                price.cache_write,
                price.cache_read,
            ];
            if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(PriceTableError::Invalid { model });
            }
            table.prices.insert(model, price);
        }
        Ok(table)
    }

    /// The price of `model`: the entry with the longest prefix of it.
    pub fn price(&self, model: &str) -> Option<&ModelPrice> {
        self.prices
            .iter()
            .filter(|(prefix, _)| model.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, price)| price)
    }

    /// The dollar cost of `usage` on `model`, rounded to a millionth of a dollar; `None` for a
    /// model without a price.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        self.price(model)
            .map(|price| (price.cost(usage) * 1e6).round() / 1e6)
    }

    /// The table as the JSON [`PriceTable::with_overrides`] reads (how the controller hands it
    /// to agent pods).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.prices).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, write: u64, read: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_write_tokens: write,
            cache_read_tokens: read,
            ..Usage::default()
        }
    }

    #[test]
    fn longest_prefix_wins_and_unknown_models_have_no_price() {
        let table = PriceTable::default();
        let opus45 = table.price("claude-opus-4-5-20251101").unwrap();
        assert_eq!(opus45.input, 5.0);
        let opus4 = table.price("claude-opus-4-20250514").unwrap();
        assert_eq!(opus4.input, 15.0);
        assert_eq!(table.price("gpt-4"), None);
        assert_eq!(table.cost("gpt-4", &usage(1, 1, 1, 1)), None);
    }

    #[test]
    fn cost_adds_every_token_kind() {
        let table = PriceTable::default();
        // 1M input at $3 + 100k output at $15 + 200k cache writes at $3.75 + 1M reads at $0.30.
        let cost = table
            .cost(
                "claude-sonnet-4-5",
                &usage(1_000_000, 100_000, 200_000, 1_000_000),
            )
            .unwrap();
        assert!((cost - (3.0 + 1.5 + 0.75 + 0.3)).abs() < 1e-9, "{cost}");
    }

    #[test]
    fn overrides_replace_and_add_and_bad_ones_are_refused() {
        let table = PriceTable::with_overrides(
            r#"{"claude-sonnet-4": {"input": 1, "output": 2, "cacheWrite": 0, "cacheRead": 0},
                "scripted": {"input": 1000, "output": 1000, "cacheWrite": 0, "cacheRead": 0}}"#,
        )
        .unwrap();
        assert_eq!(table.price("claude-sonnet-4-5").unwrap().output, 2.0);
        assert_eq!(
            table.cost("scripted-model", &usage(1000, 0, 0, 0)),
            Some(1.0)
        );
        assert!(PriceTable::with_overrides("[]").is_err());
        assert!(
            PriceTable::with_overrides(
                r#"{"m": {"input": -1, "output": 0, "cacheWrite": 0, "cacheRead": 0}}"#
            )
            .is_err()
        );
        assert!(PriceTable::with_overrides(r#"{"m": {"input": 1}}"#).is_err());
        let round_trip = PriceTable::with_overrides(&table.to_json()).unwrap();
        assert_eq!(round_trip, table);
    }
}
