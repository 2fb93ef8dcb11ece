//! Error types: [`ChainError`] for a filter chain that cannot be parsed, and
//! [`FilterError`] for a chain that cannot be applied to a given image.

use crate::Mode;

/// A filter chain specification could not be parsed.
///
/// Every variant names the filter (or the text) at fault, so the message alone tells
/// the user what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A step between two commas is empty, e.g. `emboss,,blur`.
    #[error("step {step} of the filter chain is empty")]
    EmptyStep {
        /// 1-based position of the step in the chain.
        step: usize,
    },
    /// The filter name is not known.
    #[error("unknown filter '{name}'{}", suggest(suggestion))]
    UnknownFilter {
        /// The name as written.
        name: String,
        /// The closest known name, if one is close enough.
        suggestion: Option<&'static str>,
    },
    /// A `key=value` argument names a parameter the filter does not have.
    #[error("{filter}: unknown parameter '{param}'{}", suggest(suggestion))]
    UnknownParam {
        /// The filter.
        filter: &'static str,
        /// The parameter as written.
        param: String,
        /// The closest parameter name of this filter, if one is close enough.
        suggestion: Option<&'static str>,
    },
    /// More positional arguments than the filter has parameters.
    #[error("{filter}: takes at most {max} argument(s), got {got}")]
    TooManyArgs {
        /// The filter.
        filter: &'static str,
        /// Number of parameters of the filter.
        max: usize,
        /// Number of arguments given.
        got: usize,
    },
    /// A positional argument follows a `key=value` argument.
    #[error("{filter}: positional argument '{value}' after a key=value argument")]
    PositionalAfterKey {
        /// The filter.
        filter: &'static str,
        /// The offending argument.
        value: String,
    },
    /// The same parameter was given twice.
    #[error("{filter}: parameter '{param}' given twice")]
    DuplicateParam {
        /// The filter.
        filter: &'static str,
        /// The parameter.
        param: &'static str,
    },
    /// A required parameter is missing.
    #[error("{filter}: missing required parameter '{param}'")]
    MissingParam {
        /// The filter.
        filter: &'static str,
        /// The parameter.
        param: &'static str,
    },
    /// A parameter value is malformed or out of range.
    #[error("{filter}: {param} must be {expected}, got {got}")]
    InvalidValue {
        /// The filter.
        filter: &'static str,
        /// The parameter.
        param: &'static str,
        /// What is accepted, e.g. `>= 0` or `a number`.
        expected: String,
        /// The value as written.
        got: String,
    },
}

fn suggest(s: &Option<&'static str>) -> String {
    match s {
        Some(s) => format!(" (did you mean '{s}'?)"),
        None => String::new(),
    }
}

/// A filter chain could not be applied to an image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FilterError {
    /// Pillow refuses this step for this image mode, so frameflow does too.
    #[error("step {step} '{filter}': Pillow refuses mode {mode}")]
    UnsupportedMode {
        /// 1-based position of the step in the chain.
        step: usize,
        /// The filter name.
        filter: &'static str,
        /// The mode of the image reaching the step.
        mode: Mode,
    },
    /// The pixel buffer does not match the declared geometry.
    #[error("invalid {width}x{height} {mode} image: {reason}")]
    InvalidImage {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Declared mode.
        mode: Mode,
        /// What is wrong.
        reason: String,
    },
}
