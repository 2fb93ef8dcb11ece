//! One error type for the transport, each variant naming the server (redacted URL), the
//! job and the chunk or frame it was about. Messages that come from the NATS client are
//! kept as text that has been scrubbed of the URL's secrets, never as the raw error.

use std::fmt;
use std::path::PathBuf;

/// What a transport call failed on, with enough context to act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster URL could not be parsed.
    #[error("invalid cluster URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with its user-info replaced by `***`.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No NATS server answered at the address (refused, timed out, DNS, TLS).
    #[error("cannot reach NATS at {server}: {reason}")]
    Unreachable {
        /// The redacted server URL.
        server: String,
        /// Why (scrubbed).
        reason: String,
    },
    /// The server answered but refused the credentials.
    #[error("NATS at {server} refused the credentials: {reason}")]
    Auth {
        /// The redacted server URL.
        server: String,
        /// Why (scrubbed).
        reason: String,
    },
    /// The credentials file could not be read.
    #[error("cannot use NATS credentials file {}: {reason}", path.display())]
    CredsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The server runs without JetStream.
    #[error("NATS at {server} has no JetStream (start nats-server with -js)")]
    NoJetStream {
        /// The redacted server URL.
        server: String,
    },
    /// Streams, consumer or object bucket could not be created or looked up.
    #[error("NATS at {server}: cannot set up {what}: {reason}")]
    Setup {
        /// The redacted server URL.
        server: String,
        /// Which stream, consumer or bucket.
        what: String,
        /// Why (scrubbed).
        reason: String,
    },
    /// A job id that cannot be a NATS subject token or object name.
    #[error("invalid job id {job:?}: {reason}")]
    InvalidJobId {
        /// The id as given.
        job: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A publish, fetch, ack, object transfer or purge failed.
    #[error("NATS at {server}: {op} failed for {at}: {reason}")]
    Transport {
        /// The redacted server URL.
        server: String,
        /// What was being done (`publish chunk`, `ack`, `fetch result object`, …).
        op: &'static str,
        /// Which job / chunk / frame.
        at: Place,
        /// Why (scrubbed).
        reason: String,
    },
    /// A message on one of the transport's subjects is not in the expected format.
    #[error("NATS at {server}: malformed message for {at}: {reason}")]
    Malformed {
        /// The redacted server URL.
        server: String,
        /// Which job / chunk / frame, as far as known.
        at: Place,
        /// What is wrong with it.
        reason: String,
    },
}

impl Error {
    /// Whether retrying the same call later can succeed (network trouble, a server
    /// restart), as opposed to a configuration or data problem.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::Transport { .. })
    }
}

/// Where in a job an error happened: `job J`, `job J chunk C`, `job J chunk C frame F`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Place {
    /// The job id.
    pub job: String,
    /// The chunk number, if the call was about one.
    pub chunk: Option<u64>,
    /// The frame number, if the call was about one.
    pub frame: Option<u64>,
}

impl Place {
    pub(crate) fn job(job: &str) -> Self {
        Self {
            job: job.to_owned(),
            chunk: None,
            frame: None,
        }
    }
    pub(crate) fn chunk(job: &str, chunk: u64) -> Self {
        Self {
            job: job.to_owned(),
            chunk: Some(chunk),
            frame: None,
        }
    }
    pub(crate) fn frame(job: &str, chunk: u64, frame: u64) -> Self {
        Self {
            job: job.to_owned(),
            chunk: Some(chunk),
            frame: Some(frame),
        }
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.job.is_empty() {
            f.write_str("the worker pool")?;
        } else {
            write!(f, "job {}", self.job)?;
        }
        if let Some(c) = self.chunk {
            write!(f, " chunk {c}")?;
        }
        if let Some(fr) = self.frame {
            write!(f, " frame {fr}")?;
        }
        Ok(())
    }
}
