//! What the user typed after `-i`, classified.

use std::path::Path;

/// The kind of input, which decides the FFmpeg options and the live defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// A local file (or `file:` URL).
    File,
    /// A network URL: `http(s)://`, `rtsp://`, `rtmp://`, `srt://`, `udp://`, `tcp://`, …
    Network,
    /// `lavfi:<graph>`: a libavfilter source such as `testsrc2=size=1280x720:rate=30`.
    Lavfi,
    /// `v4l2:<device>`: a V4L2 camera through libavdevice.
    V4l2,
    /// `-`: standard input.
    Stdin,
}

/// A parsed `-i` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// As the user wrote it, with secrets hidden ([`redact`]): the only form ever shown
    /// (messages, logs, stats, the web page, metrics labels).
    pub raw: String,
    pub kind: InputKind,
    /// What is handed to `avformat_open_input`.
    pub url: String,
    /// A forced demuxer (`lavfi`, `video4linux2`), if any.
    pub format: Option<&'static str>,
}

/// Why an input argument is unusable before anything is opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("empty input")]
    Empty,
    #[error(
        "input '{0}': missing graph after 'lavfi:' (e.g. lavfi:testsrc2=size=1280x720:rate=30)"
    )]
    EmptyLavfi(String),
    #[error("input '{0}': missing device after 'v4l2:' (e.g. v4l2:/dev/video0)")]
    EmptyV4l2(String),
    #[error("input '{0}': no host in the URL (e.g. rtsp://192.0.2.10:554/stream1)")]
    NoHost(String),
}

/// Query parameters whose values are secrets (compared without case; also any name
/// ending in one of the longer ones, as `access_token`, `api_key`, `streamkey`).
const SECRET_PARAMS: &[&str] = &[
    "passphrase",
    "password",
    "token",
    "key",
    "auth",
    "secret",
    "sig",
];

/// `text` with secrets replaced by `***`: the password of URL user-info
/// (`rtsp://admin:***@cam/…`; user-info without a password, often a token, whole), and
/// the values of secret query parameters (`srt://h:9000?passphrase=***`). Text that is
/// no URL is returned as it is.
pub fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    let authority = match authority.rsplit_once('@') {
        Some((info, host)) => match info.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_string(),
    };
    let (before_q, query_and_frag) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut out = format!("{scheme}://{authority}{before_q}");
    if let Some(q) = query_and_frag {
        let (q, frag) = match q.split_once('#') {
            Some((q, f)) => (q, Some(f)),
            None => (q, None),
        };
        let params: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_param(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
        if let Some(f) = frag {
            out.push('#');
            out.push_str(f);
        }
    }
    out
}

fn is_secret_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| {
        n == *s
            || match n.strip_suffix(s) {
                // `access_token`, `streampassword`; the short ones only after a separator
                // or as `apikey`/`streamkey` (not `monkey`).
                Some(head) if s.len() > 3 => !head.is_empty(),
                Some(head) => head.ends_with(['_', '-', '.']) || ["api", "stream"].contains(&head),
                None => false,
            }
    })
}

/// The host (brackets removed from IPv6) and port of a `scheme://[user@]host[:port]/…`
/// URL; `None` when it has no authority part.
pub fn host_port(url: &str) -> Option<(String, Option<u16>)> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    Some((host.to_string(), port.and_then(|p| p.parse().ok())))
}

const NETWORK_SCHEMES: &[&str] = &[
    "http", "https", "rtsp", "rtsps", "rtmp", "rtmps", "rtmpt", "rtmpe", "rtmpte", "rtmpts", "srt",
    "udp", "tcp", "rtp", "tls", "hls", "mmsh", "mmst", "ftp", "sftp", "icecast", "rist", "zmq",
];

impl InputSpec {
    pub fn parse(raw: &str) -> Result<InputSpec, SpecError> {
        if raw.is_empty() {
            return Err(SpecError::Empty);
        }
        let shown = redact(raw);
        let mk = |kind, url: &str, format| InputSpec {
            raw: shown.clone(),
            kind,
            url: url.to_string(),
            format,
        };
        if raw == "-" {
            return Ok(mk(InputKind::Stdin, "pipe:0", None));
        }
        if let Some(graph) = raw.strip_prefix("lavfi:") {
            if graph.is_empty() {
                return Err(SpecError::EmptyLavfi(shown));
            }
            return Ok(mk(InputKind::Lavfi, graph, Some("lavfi")));
        }
        if let Some(dev) = raw.strip_prefix("v4l2:") {
            if dev.is_empty() {
                return Err(SpecError::EmptyV4l2(shown));
            }
            return Ok(mk(InputKind::V4l2, dev, Some("video4linux2")));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            let base = scheme.split('+').next_back().unwrap_or(&scheme);
            if scheme == "file" {
                return Ok(mk(InputKind::File, raw, None));
            }
            if NETWORK_SCHEMES.contains(&base) || NETWORK_SCHEMES.contains(&scheme.as_str()) {
                // `udp://:1234`, `tcp://:5000?listen=1` (listen on every address) have a
                // port and no host; a URL with neither names nothing.
                let authority = raw
                    .split_once("://")
                    .map_or("", |(_, r)| r.split(['/', '?', '#']).next().unwrap_or(""));
                if authority.is_empty() {
                    return Err(SpecError::NoHost(shown));
                }
                return Ok(mk(InputKind::Network, raw, None));
            }
        }
        Ok(mk(InputKind::File, raw, None))
    }

    /// Live inputs default to `--overload drop-oldest` and get short probing and timeouts.
    pub fn is_live(&self) -> bool {
        matches!(
            self.kind,
            InputKind::Network | InputKind::V4l2 | InputKind::Stdin
        )
    }

    pub fn is_rtsp(&self) -> bool {
        let l = self.raw.to_ascii_lowercase();
        l.starts_with("rtsp://") || l.starts_with("rtsps://")
    }

    /// A short label for `{stream}` and stats: the file stem, the URL's last path segment,
    /// or the device name.
    pub fn default_label(&self) -> String {
        let candidate = match self.kind {
            InputKind::Stdin => return "stdin".into(),
            InputKind::Lavfi => {
                return self
                    .url
                    .split(['=', ',', ':'])
                    .next()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("lavfi")
                    .to_string();
            }
            InputKind::File | InputKind::V4l2 => Path::new(self.url.trim_start_matches("file://"))
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned()),
            InputKind::Network => {
                let no_query = self.url.split(['?', '#']).next().unwrap_or("");
                let after_scheme = no_query.split_once("://").map_or(no_query, |(_, r)| r);
                let path = after_scheme.trim_end_matches('/');
                match path.split_once('/') {
                    // A path names the stream: its last segment's stem.
                    Some((_, p)) if !p.is_empty() => {
                        let last = p.rsplit('/').next().unwrap_or(p);
                        Path::new(last)
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                    }
                    // No path (`srt://`, `udp://`, `tcp://` inputs): host and port, as
                    // `127.0.0.1-9000` (`:` would be awkward in file names).
                    _ => host_port(&self.url).map(|(h, p)| match p {
                        Some(p) if h.is_empty() => format!("port-{p}"),
                        Some(p) => format!("{h}-{p}"),
                        None => h,
                    }),
                }
            }
        };
        candidate
            .filter(|s| !s.is_empty())
            .map(|s| s.replace(['/', ':'], "_"))
            .unwrap_or_else(|| "stream".into())
    }
}

impl std::fmt::Display for InputSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_inputs() {
        let s = InputSpec::parse("clip.mp4").unwrap();
        assert_eq!((s.kind, s.is_live()), (InputKind::File, false));
        assert_eq!(s.default_label(), "clip");
        let s = InputSpec::parse("http://127.0.0.1:8090/test1.mpg").unwrap();
        assert_eq!((s.kind, s.is_live()), (InputKind::Network, true));
        assert_eq!(s.default_label(), "test1");
        let s = InputSpec::parse("RTSP://127.0.0.1:8554/cam").unwrap();
        assert!(s.is_rtsp());
        assert_eq!(s.default_label(), "cam");
        let s = InputSpec::parse("lavfi:testsrc2=size=1280x720:rate=30").unwrap();
        assert_eq!(s.kind, InputKind::Lavfi);
        assert_eq!(s.url, "testsrc2=size=1280x720:rate=30");
        assert_eq!(s.format, Some("lavfi"));
        assert_eq!(s.default_label(), "testsrc2");
        let s = InputSpec::parse("v4l2:/dev/video0").unwrap();
        assert_eq!((s.kind, s.format), (InputKind::V4l2, Some("video4linux2")));
        assert_eq!(s.default_label(), "video0");
        let s = InputSpec::parse("-").unwrap();
        assert_eq!((s.kind, s.url.as_str()), (InputKind::Stdin, "pipe:0"));
        assert_eq!(
            InputSpec::parse("file:///x/y.ts").unwrap().kind,
            InputKind::File
        );
        assert_eq!(
            InputSpec::parse("hls+http://h/p.m3u8").unwrap().kind,
            InputKind::Network
        );
        assert!(InputSpec::parse("").is_err());
        let s = InputSpec::parse("rtsp://admin:S3cret@192.0.2.10:554/s?token=abc&x=1").unwrap();
        assert_eq!(s.raw, "rtsp://admin:***@192.0.2.10:554/s?token=***&x=1");
        assert_eq!(s.url, "rtsp://admin:S3cret@192.0.2.10:554/s?token=abc&x=1");
        assert_eq!(
            redact("srt://127.0.0.1:9000?mode=caller&passphrase=longsecret1&streamid=a"),
            "srt://127.0.0.1:9000?mode=caller&passphrase=***&streamid=a"
        );
        assert_eq!(
            redact("http://tok@h/x.m3u8?api_key=k&Auth=z&sig=q#f"),
            "http://***@h/x.m3u8?api_key=***&Auth=***&sig=***#f"
        );
        assert_eq!(redact("clip.mp4"), "clip.mp4");
        assert_eq!(
            redact("http://h/monkey.ts?keyframes=1"),
            "http://h/monkey.ts?keyframes=1"
        );
        assert_eq!(
            InputSpec::parse("srt://127.0.0.1:9000?mode=caller")
                .unwrap()
                .default_label(),
            "127.0.0.1-9000"
        );
        assert_eq!(
            InputSpec::parse("udp://127.0.0.1:1234")
                .unwrap()
                .default_label(),
            "127.0.0.1-1234"
        );
        assert_eq!(
            InputSpec::parse("udp://:1234").unwrap().default_label(),
            "port-1234"
        );
        assert_eq!(
            InputSpec::parse("rtmp://user:pw@[::1]:1935/live/cam")
                .unwrap()
                .default_label(),
            "cam"
        );
        assert!(matches!(
            InputSpec::parse("rtsp://"),
            Err(SpecError::NoHost(_))
        ));
        assert!(matches!(
            InputSpec::parse("http:///x.ts"),
            Err(SpecError::NoHost(_))
        ));
        assert_eq!(
            host_port("rtsp://admin:pw@cam.local:554/s"),
            Some(("cam.local".into(), Some(554)))
        );
        assert_eq!(
            host_port("srt://[::1]:9000?mode=listener"),
            Some(("::1".into(), Some(9000)))
        );
        assert!(InputSpec::parse("lavfi:").is_err());
    }
}
