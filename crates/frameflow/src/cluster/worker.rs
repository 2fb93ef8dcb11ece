//! A worker's half: one chunk in, one result per picked frame out. The chunk's NUT file
//! is opened like any file input ([`Source`]), and each picked frame goes through the
//! local pipeline's own convert/filter/encode ([`Renderer`]), so its bytes are the ones
//! a local run writes.

use super::wire::{self, ChunkHeader, Pick, ResultHeader};
use crate::pipeline::Renderer;
use crate::sink::encode::{EncodeOptions, ImageFormat};
use crate::source::packets::ChunkFile;
use crate::source::{DecodeShare, InputSpec, OpenOptions, Source};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Why a chunk could not be worked on at all (its frames are then the pool's to retry).
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    #[error(transparent)]
    Wire(#[from] wire::WireError),
    #[error("scratch directory {}: {source}", path.display())]
    Scratch {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What came of one chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChunkDone {
    pub job: String,
    pub chunk: u64,
    /// Picked frames made.
    pub made: u64,
    /// Picked frames that could not be made (each sent as a failed result).
    pub failed: u64,
    /// Frames decoded.
    pub decoded: u64,
    /// The results were not all handed over: `emit` said stop.
    pub interrupted: bool,
}

/// Works on chunks, one at a time; keeps its renderer (converter, filter scratch,
/// encoders) from one chunk of a job to the next.
#[derive(Debug)]
pub struct ChunkWorker {
    scratch: PathBuf,
    renderer: Option<Renderer>,
}

impl ChunkWorker {
    /// A worker that puts each chunk's file in `scratch` while it decodes it.
    pub fn new(scratch: PathBuf) -> ChunkWorker {
        ChunkWorker {
            scratch,
            renderer: None,
        }
    }

    /// Decodes the chunk in `msg` and makes its picked frames, handing each result
    /// message to `emit` as soon as it is made (`emit` returns false to stop). Every pick
    /// gets a result: a frame, or a failure saying why.
    pub fn process(
        &mut self,
        msg: &[u8],
        stop: &Arc<AtomicBool>,
        emit: &mut dyn FnMut(u64, Vec<u8>) -> bool,
    ) -> Result<ChunkDone, WorkError> {
        let (header, nut) = wire::decode_chunk(msg)?;
        crate::pipeline::test_hook::panic_at("FRAMEFLOW_TEST_PANIC_IN_CHUNK", header.chunk);
        let ChunkHeader {
            job,
            chunk,
            spec,
            picks,
            skip,
        } = header;
        let mut done = ChunkDone {
            job: job.clone(),
            chunk,
            ..ChunkDone::default()
        };
        let mut base = ResultHeader {
            job,
            chunk,
            seq: 0,
            pts_ms: 0,
            outcome: wire::Outcome::Failed {
                reason: String::new(),
            },
            decoded: 0,
        };
        let mut waiting: BTreeMap<u32, VecDeque<Pick>> = BTreeMap::new();
        for p in &picks {
            waiting.entry(p.rank).or_default().push_back(*p);
        }
        let mut left = picks.len();
        let Some(format) = ImageFormat::from_extension(&spec.format) else {
            let why = format!("unknown output format '{}'", spec.format);
            fail_all(&why, &mut waiting, &base, &mut done, emit);
            return Ok(done);
        };
        let encode = EncodeOptions {
            format,
            quality: spec.quality,
        };
        if !self
            .renderer
            .as_ref()
            .is_some_and(|r| r.is_for(&spec.chain, encode))
        {
            match Renderer::new(&spec.chain, encode) {
                Ok(r) => self.renderer = Some(r),
                Err(e) => {
                    fail_all(&e.to_string(), &mut waiting, &base, &mut done, emit);
                    return Ok(done);
                }
            }
        }
        let Some(renderer) = self.renderer.as_mut() else {
            return Ok(done);
        };
        let file = ChunkFile::write(&self.scratch, nut).map_err(|source| WorkError::Scratch {
            path: self.scratch.clone(),
            source,
        })?;
        let opened = InputSpec::parse(&file.path.to_string_lossy())
            .map_err(crate::source::SourceError::from)
            .and_then(|input| {
                let opts = OpenOptions {
                    timeout: Duration::from_secs(30),
                    decode_share: DecodeShare::All,
                    max_pixels: spec.max_pixels,
                    ..OpenOptions::default()
                };
                Source::open(&input, &opts, stop.clone())
            });
        let mut source = match opened {
            Ok(s) => s,
            Err(e) => {
                fail_all(&e.to_string(), &mut waiting, &base, &mut done, emit);
                return Ok(done);
            }
        };
        let mut why = "its chunk holds no such frame".to_string();
        // Frames before the first keyframe are a lead-in's broken leading frames (or
        // dropped by the decoder): not counted. From it on, `skip` frames are the
        // lead-in's, then come the chunk's own, in presentation order.
        let mut from_key: Option<u64> = None;
        while left > 0 {
            let meta = match source.next_frame() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    why = e.to_string();
                    break;
                }
            };
            done.decoded += 1;
            base.decoded = done.decoded;
            let n = match from_key.as_mut() {
                Some(n) => {
                    *n += 1;
                    *n
                }
                None if meta.key => *from_key.insert(0),
                None => continue,
            };
            let Some(rank) = n
                .checked_sub(u64::from(skip))
                .and_then(|r| u32::try_from(r).ok())
            else {
                continue;
            };
            let Some(pick) = waiting.get_mut(&rank).and_then(VecDeque::pop_front) else {
                continue;
            };
            if waiting.get(&rank).is_some_and(VecDeque::is_empty) {
                waiting.remove(&rank);
            }
            left -= 1;
            if pick.exact && meta.pts_ms != pick.pts_ms {
                done.failed += 1;
                let why = format!(
                    "the decoder's frame {rank} of its chunk is at {} ms, not {} ms",
                    meta.pts_ms, pick.pts_ms
                );
                if !emit(pick.seq, wire::failed_result(&base, pick, why)) {
                    done.interrupted = true;
                    return Ok(done);
                }
                continue;
            }
            let pic = source.take_picture();
            let msg = match renderer.render(&pic, spec.raw) {
                Ok(r) => {
                    done.made += 1;
                    wire::frame_result(&base, pick, &r.filtered, r.raw.as_deref())
                }
                Err(e) => {
                    done.failed += 1;
                    wire::failed_result(&base, pick, e.to_string())
                }
            };
            drop(pic);
            if !emit(pick.seq, msg) {
                done.interrupted = true;
                return Ok(done);
            }
        }
        if source.damage().any() {
            why = format!("{why} ({})", source.damage());
        }
        fail_all(&why, &mut waiting, &base, &mut done, emit);
        Ok(done)
    }
}

/// Sends a failed result, saying `why`, for every pick still `waiting`; counts them.
fn fail_all(
    why: &str,
    waiting: &mut BTreeMap<u32, VecDeque<Pick>>,
    base: &ResultHeader,
    done: &mut ChunkDone,
    emit: &mut dyn FnMut(u64, Vec<u8>) -> bool,
) {
    for pick in std::mem::take(waiting).into_values().flatten() {
        done.failed += 1;
        if !emit(pick.seq, wire::failed_result(base, pick, why.to_string())) {
            done.interrupted = true;
            return;
        }
    }
}
