//! The messages between a job owner and its workers: a small JSON header, then the
//! bytes it describes. `FFC1`: a chunk (header, then a NUT file of packets); `FFR1`: one
//! frame's result (header, then the filtered output, then the raw one).

use serde::{Deserialize, Serialize};

const CHUNK_MAGIC: &[u8; 4] = b"FFC1";
const RESULT_MAGIC: &[u8; 4] = b"FFR1";
/// Headers are small (a few KB for a GOP's picks); anything larger is not ours.
const MAX_HEADER: usize = 4 << 20;

/// What a worker does to the frames of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The filter chain, as `-f` takes it.
    pub chain: String,
    /// The output format's extension (`jpg`, `png`, …).
    pub format: String,
    pub quality: u8,
    /// Also encode the unfiltered frame (`--raw-dir`).
    pub raw: bool,
    /// The pixel limit (`--max-pixels`).
    pub max_pixels: u64,
}

/// A frame the job owner selected: its place in the output order, its time, and which
/// of the chunk's own frames it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pick {
    pub seq: u64,
    pub pts_ms: i64,
    /// Its place among the chunk's own frames in presentation order (0: the first).
    pub rank: u32,
    /// `pts_ms` is the packet's own timestamp (else inferred from decode timestamps, as
    /// MPEG-1/2 streams that stamp only some packets need): a decoded frame at this rank
    /// with another time is not this frame.
    pub exact: bool,
}

/// A chunk: a run of packets from one keyframe to the next, and the frames of it to
/// make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkHeader {
    pub job: String,
    pub chunk: u64,
    pub spec: JobSpec,
    pub picks: Vec<Pick>,
    /// Frames the decoder puts out, from the first keyframe on, before the chunk's own
    /// (a lead-in GOP decoded for references).
    pub skip: u32,
}

/// How one picked frame came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Made: the payload holds `filtered` bytes, then `raw` bytes.
    Frame { filtered: u64, raw: Option<u64> },
    /// Not made, for this reason.
    Failed { reason: String },
}

/// One picked frame's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultHeader {
    pub job: String,
    pub chunk: u64,
    pub seq: u64,
    pub pts_ms: i64,
    pub outcome: Outcome,
    /// Frames the worker decoded from this chunk.
    pub decoded: u64,
}

/// A message that is not one of ours, or not whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a frameflow {0} message")]
    Magic(&'static str),
    #[error("truncated {0} message")]
    Truncated(&'static str),
    #[error("{what} header: {reason}")]
    Header { what: &'static str, reason: String },
}

fn encode(magic: &[u8; 4], header: &impl Serialize, parts: &[&[u8]]) -> Vec<u8> {
    // A header of plain fields always serialises.
    let json = serde_json::to_vec(header).unwrap_or_default();
    let len = u32::try_from(json.len()).unwrap_or(u32::MAX);
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(8 + json.len() + body);
    out.extend_from_slice(magic);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&json);
    for p in parts {
        out.extend_from_slice(p);
    }
    out
}

fn decode<'a, H: Deserialize<'a>>(
    magic: &[u8; 4],
    what: &'static str,
    msg: &'a [u8],
) -> Result<(H, &'a [u8]), WireError> {
    if msg.len() < 8 || &msg[..4] != magic {
        return Err(WireError::Magic(what));
    }
    let len = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]) as usize;
    if len > MAX_HEADER || msg.len() - 8 < len {
        return Err(WireError::Truncated(what));
    }
    let header = serde_json::from_slice(&msg[8..8 + len]).map_err(|e| WireError::Header {
        what,
        reason: e.to_string(),
    })?;
    Ok((header, &msg[8 + len..]))
}

/// A chunk message: its header, then the NUT file.
pub fn encode_chunk(header: &ChunkHeader, nut: &[u8]) -> Vec<u8> {
    encode(CHUNK_MAGIC, header, &[nut])
}

/// A chunk message's header and NUT file.
pub fn decode_chunk(msg: &[u8]) -> Result<(ChunkHeader, &[u8]), WireError> {
    decode(CHUNK_MAGIC, "chunk", msg)
}

/// A result message. `filtered`/`raw` must match `header.outcome`'s lengths, as
/// [`frame_result`] and [`failed_result`] make them.
fn encode_result(header: &ResultHeader, filtered: &[u8], raw: &[u8]) -> Vec<u8> {
    encode(RESULT_MAGIC, header, &[filtered, raw])
}

/// The result of a frame that was made.
pub fn frame_result(
    base: &ResultHeader,
    pick: Pick,
    filtered: &[u8],
    raw: Option<&[u8]>,
) -> Vec<u8> {
    let header = ResultHeader {
        seq: pick.seq,
        pts_ms: pick.pts_ms,
        outcome: Outcome::Frame {
            filtered: filtered.len() as u64,
            raw: raw.map(|r| r.len() as u64),
        },
        ..base.clone()
    };
    encode_result(&header, filtered, raw.unwrap_or_default())
}

/// The result of a frame that could not be made.
pub fn failed_result(base: &ResultHeader, pick: Pick, reason: String) -> Vec<u8> {
    let header = ResultHeader {
        seq: pick.seq,
        pts_ms: pick.pts_ms,
        outcome: Outcome::Failed { reason },
        ..base.clone()
    };
    encode_result(&header, &[], &[])
}

/// A decoded result: the header and, for a made frame, its outputs.
#[derive(Debug)]
pub struct FrameResult<'a> {
    pub header: ResultHeader,
    pub filtered: &'a [u8],
    pub raw: Option<&'a [u8]>,
}

/// Reads a result message, checking its lengths.
pub fn decode_result(msg: &[u8]) -> Result<FrameResult<'_>, WireError> {
    let (header, body): (ResultHeader, &[u8]) = decode(RESULT_MAGIC, "result", msg)?;
    let (filtered, raw) = match &header.outcome {
        Outcome::Frame { filtered, raw } => {
            let f = usize::try_from(*filtered).map_err(|_| WireError::Truncated("result"))?;
            let r = raw
                .map(usize::try_from)
                .transpose()
                .map_err(|_| WireError::Truncated("result"))?;
            if body.len() != f + r.unwrap_or(0) {
                return Err(WireError::Truncated("result"));
            }
            (&body[..f], r.map(|_| &body[f..]))
        }
        Outcome::Failed { .. } => (&body[..0], None),
    };
    Ok(FrameResult {
        header,
        filtered,
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ResultHeader {
        ResultHeader {
            job: "j".into(),
            chunk: 3,
            seq: 0,
            pts_ms: 0,
            outcome: Outcome::Failed {
                reason: String::new(),
            },
            decoded: 60,
        }
    }

    #[test]
    fn chunks_and_results_round_trip() {
        let h = ChunkHeader {
            job: "j".into(),
            chunk: 3,
            spec: JobSpec {
                chain: "emboss".into(),
                format: "jpg".into(),
                quality: 75,
                raw: true,
                max_pixels: 1 << 20,
            },
            picks: vec![Pick {
                seq: 7,
                pts_ms: 280,
                rank: 2,
                exact: true,
            }],
            skip: 0,
        };
        let msg = encode_chunk(&h, b"NUT bytes");
        assert_eq!(decode_chunk(&msg).unwrap(), (h, &b"NUT bytes"[..]));
        let pick = Pick {
            seq: 7,
            pts_ms: 280,
            rank: 2,
            exact: false,
        };
        let msg = frame_result(&base(), pick, b"jpeg", Some(b"raw!!"));
        let r = decode_result(&msg).unwrap();
        assert_eq!(
            (r.header.seq, r.filtered, r.raw),
            (7, &b"jpeg"[..], Some(&b"raw!!"[..]))
        );
        let msg = failed_result(&base(), pick, "no frame".into());
        let r = decode_result(&msg).unwrap();
        assert!(matches!(r.header.outcome, Outcome::Failed { ref reason } if reason == "no frame"));
    }

    #[test]
    fn damaged_messages_are_errors_not_panics() {
        let pick = Pick {
            seq: 1,
            pts_ms: 0,
            rank: 0,
            exact: true,
        };
        let msg = frame_result(&base(), pick, b"jpeg", None);
        for cut in 0..msg.len() {
            assert!(decode_result(&msg[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_chunk(&msg).is_err());
        let mut long = msg.clone();
        long.push(0);
        assert!(decode_result(&long).is_err());
    }
}
