//! The two concrete syntaxes of a policy, HCL and JSON, read into one plain intermediate form
//! ([`RawPolicy`]) that [`crate::policy`] validates. Only structure is checked here; meaning
//! (capability names, globs, durations) is checked once, for both syntaxes, in `policy`.

mod hcl;
mod json;
mod prescan;

use crate::error::PolicyError;
use serde_json::Value;

/// One `path "<pattern>" { ... }` block.
#[derive(Debug)]
pub(crate) struct RawRule {
    pub pattern: String,
    /// 1-based line of the block (HCL only).
    pub line: Option<usize>,
    pub fields: Vec<RawField>,
}

/// One `key = value` inside a path block, the value turned into JSON.
#[derive(Debug)]
pub(crate) struct RawField {
    pub key: String,
    pub value: Value,
    pub line: Option<usize>,
}

/// Reads `text` as JSON if it starts with `{` (an HCL body never does), as HCL otherwise.
pub(crate) fn parse(text: &str) -> Result<Vec<RawRule>, PolicyError> {
    if text.trim_start().starts_with('{') {
        json::parse(text)
    } else {
        hcl::parse(text)
    }
}
