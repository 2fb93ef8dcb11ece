//! Errors at the edge: which exit code they map to, and how they are printed.

/// An error at the edge, with the exit code it maps to.
pub enum Failure {
    Usage(anyhow::Error),
    Runtime(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Runtime(e.into())
    }
}

pub fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

/// An error and its causes on one line. The convention: a library error's message
/// already says its cause (`output directory x: Permission denied`), and the edge adds
/// each further cause of the chain (anyhow contexts, `#[source]`s) only if the text so
/// far does not already say it, so no cause is printed twice.
pub fn error_text(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let c = cause.to_string();
        if text.is_empty() {
            text = c;
        } else if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let io = std::io::Error::other("Permission denied");
        let e = anyhow::Error::from(io).context("output directory x: Permission denied");
        assert_eq!(error_text(&e), "output directory x: Permission denied");
        let e = anyhow::anyhow!("disk gone").context("writing --stats-json s.json");
        assert_eq!(error_text(&e), "writing --stats-json s.json: disk gone");
    }
}
