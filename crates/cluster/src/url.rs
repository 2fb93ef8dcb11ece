//! `nats://` / `tls://` cluster URLs with their credentials kept out of every display.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// How a client proves who it is to the NATS server.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Auth {
    None,
    UserPass { user: String, pass: String },
    Token(String),
}

/// A parsed cluster address: `nats://[user:pass@|token@]host[:port]` or `tls://…`,
/// optionally with a NATS credentials file (`--nats-creds FILE`).
///
/// `Display` and `Debug` never show the password or token: user-info reads `***`
/// (`nats://***@127.0.0.1:4222`). The secrets are only handed to the NATS client.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterUrl {
    tls: bool,
    host: String,
    port: u16,
    pub(crate) auth: Auth,
    creds_file: Option<PathBuf>,
}

/// The port NATS listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4222;

impl ClusterUrl {
    /// Parses `nats://HOST[:PORT]`, `nats://USER:PASS@HOST[:PORT]`, `nats://TOKEN@HOST[:PORT]`
    /// and the same with `tls://` (TLS required). User-info may be percent-encoded
    /// (`p%40ss` for `p@ss`). The port defaults to 4222. An IPv6 host is written in
    /// brackets (`nats://[::1]:4222`).
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming the (redacted) URL and what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |reason: &str| Error::InvalidUrl {
            url: redact_str(s),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| bad("expected nats://HOST:PORT or tls://HOST:PORT"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "nats" => false,
            "tls" => true,
            _ => return Err(bad("the scheme must be nats:// or tls://")),
        };
        // Nothing after the authority is meaningful for NATS; a trailing '/' is tolerated.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a NATS URL has no path, query or fragment"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let auth = match userinfo {
            None => Auth::None,
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => {
                    let user = percent_decode(user).ok_or_else(|| bad("bad %-escape in user"))?;
                    let pass =
                        percent_decode(pass).ok_or_else(|| bad("bad %-escape in password"))?;
                    if user.is_empty() {
                        return Err(bad("empty user name"));
                    }
                    Auth::UserPass { user, pass }
                }
                None => {
                    let token = percent_decode(u).ok_or_else(|| bad("bad %-escape in token"))?;
                    if token.is_empty() {
                        return Err(bad("empty token before '@'"));
                    }
                    Auth::Token(token)
                }
            },
        };
        let (host, port) = split_host_port(hostport).ok_or_else(|| bad("bad HOST:PORT"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            tls,
            host,
            port,
            auth,
            creds_file: None,
        })
    }

    /// Adds a NATS credentials file (JWT + NKey seed, as `nsc` writes them).
    #[must_use]
    pub fn with_creds_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.creds_file = Some(path.into());
        self
    }

    /// The credentials file, if any.
    pub fn creds_file(&self) -> Option<&Path> {
        self.creds_file.as_deref()
    }

    /// The host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL asks for TLS (`tls://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// Whether the URL carries a user/password or a token.
    pub fn has_secret(&self) -> bool {
        self.auth != Auth::None
    }

    /// The address handed to the client, without user-info (auth is passed apart).
    pub(crate) fn server_addr(&self) -> String {
        let scheme = if self.tls { "tls" } else { "nats" };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }

    /// Replaces every occurrence of this URL's password or token in `text` by `***`:
    /// applied to every message that comes from the client library before it is shown.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let secrets: Vec<&str> = match &self.auth {
            Auth::None => vec![],
            Auth::UserPass { pass, .. } => vec![pass.as_str()],
            Auth::Token(t) => vec![t.as_str()],
        };
        for secret in secrets {
            if !secret.is_empty() {
                out = out.replace(secret, "***");
            }
        }
        out
    }
}

impl fmt::Display for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = self.server_addr();
        if self.has_secret() {
            let (scheme, rest) = addr.split_once("://").unwrap_or(("nats", &addr));
            write!(f, "{scheme}://***@{rest}")
        } else {
            f.write_str(&addr)
        }
    }
}

impl fmt::Debug for ClusterUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterUrl")
            .field("url", &self.to_string())
            .field("creds_file", &self.creds_file)
            .finish()
    }
}

impl std::str::FromStr for ClusterUrl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// Hides the user-info of a URL that could not be parsed (for error messages).
fn redact_str(s: &str) -> String {
    match s.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => s.to_owned(),
        },
        None if s.contains('@') => "***".to_owned(),
        None => s.to_owned(),
    }
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => DEFAULT_PORT,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return Some((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
        None => Some((s.to_owned(), DEFAULT_PORT)),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_redacts_user_pass() {
        let u = ClusterUrl::parse("nats://alice:s%40cret@127.0.0.1:4333").unwrap();
        assert_eq!(u.host(), "127.0.0.1");
        assert_eq!(u.port(), 4333);
        assert!(
            u.auth
                == Auth::UserPass {
                    user: "alice".into(),
                    pass: "s@cret".into()
                }
        );
        assert_eq!(u.to_string(), "nats://***@127.0.0.1:4333");
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("s@cret") && !dbg.contains("s%40cret") && !dbg.contains("alice"));
        assert_eq!(u.scrub("auth failed for s@cret"), "auth failed for ***");
    }

    #[test]
    fn parses_token_default_port_tls_ipv6() {
        let u = ClusterUrl::parse("tls://tok123@example.org").unwrap();
        assert!(u.is_tls());
        assert_eq!(u.port(), DEFAULT_PORT);
        assert!(u.auth == Auth::Token("tok123".into()));
        assert_eq!(u.to_string(), "tls://***@example.org:4222");
        let v = ClusterUrl::parse("nats://[::1]:5000/").unwrap();
        assert_eq!(v.host(), "::1");
        assert_eq!(v.to_string(), "nats://[::1]:5000");
        assert!(!v.has_secret());
    }

    #[test]
    fn refuses_bad_urls_without_leaking() {
        for bad in [
            "http://u:hunter2@h:1",
            "nats://u:hunter2@h:notaport",
            "nats://u:hunter2@h:1/path",
            "u:hunter2@h:1",
            "nats://:hunter2@h:1",
            "nats://u:hunter2@:1",
        ] {
            let e = ClusterUrl::parse(bad).unwrap_err();
            let msg = format!("{e} {e:?}");
            assert!(!msg.contains("hunter2"), "{bad}: {msg}");
            assert!(matches!(e, Error::InvalidUrl { .. }), "{bad}: {msg}");
        }
    }
}
