//! The job owner's half: demux (no decoding), cut the packets into chunks at
//! keyframes, pick the frames sampling selects (the local run's own [`Selector`]), send
//! the chunks that hold a picked frame, and commit the results through the local
//! run's committer ([`pipeline::run_remote`]).
//!
//! A chunk is one GOP: the packets from a keyframe up to the next, and the frames picked
//! from it. An open GOP (whose leading B-frames, shown before its keyframe, refer to the
//! GOP before) is sent with the GOP before it as a lead-in, decoded for its references
//! only, so every picked frame is decoded from the references a local decoder has. The
//! cost: open-GOP streams are decoded about twice.

use super::Pool;
use super::wire::{self, ChunkHeader, JobSpec, Pick};
use crate::pipeline::Overload;
use crate::pipeline::{
    self, Committing, PipelineError, RemoteEnd, RunConfig, RunOutcome, Selector, Taps,
};
use crate::runtime::Control;
use crate::runtime::stats::{DropReason, SkipReason, Stats, StreamState};
use crate::source::SourceError;
use crate::source::packets::{PacketReader, RawPacket};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How the job owner runs a job.
#[derive(Debug, Clone)]
pub struct OwnerOptions {
    /// The job's id: chunk and result names start with it.
    pub job: String,
    /// Chunks sent but not yet answered, at most (a bounded backlog in the pool).
    pub max_in_flight: usize,
    /// Where chunk files are made while they are packed.
    pub scratch: PathBuf,
    /// How long, after a stop, results of chunks already sent are still waited for.
    pub stop_grace: Duration,
}

/// A chunk sent and not yet fully answered.
#[derive(Debug)]
struct InFlight {
    /// Picks not yet answered.
    open: usize,
    decoded: u64,
    /// When its first packet was read: frame latency counts from here.
    read_at: Instant,
}

/// The owner's bookkeeping of what it sent and what came back.
#[derive(Debug, Default)]
struct Ledger {
    chunks: BTreeMap<u64, InFlight>,
    /// Picks not yet answered: seq → (chunk, pts_ms).
    open: HashMap<u64, (u64, i64)>,
    /// Results for frames already answered (a chunk done twice), ignored.
    duplicates: u64,
}

impl Ledger {
    fn sent(&mut self, chunk: u64, picks: &[Pick], read_at: Instant) {
        self.chunks.insert(
            chunk,
            InFlight {
                open: picks.len(),
                decoded: 0,
                read_at,
            },
        );
        for p in picks {
            self.open.insert(p.seq, (chunk, p.pts_ms));
        }
    }

    /// Takes pick `seq` off the books: its time and its chunk's read time when it was
    /// open.
    fn answered(&mut self, seq: u64, decoded: u64, stats: &Stats) -> Option<(i64, Instant)> {
        let Some((chunk, pts)) = self.open.remove(&seq) else {
            self.duplicates += 1;
            return None;
        };
        let mut read_at = Instant::now();
        if let Some(c) = self.chunks.get_mut(&chunk) {
            c.open -= 1;
            c.decoded = c.decoded.max(decoded);
            read_at = c.read_at;
            if c.open == 0 {
                Stats::add(&stats.decoded, c.decoded);
                self.chunks.remove(&chunk);
            }
        }
        Some((pts, read_at))
    }

    /// Gives up the oldest chunk in flight: its open picks, in order (a late answer
    /// for them is then ignored).
    fn drop_oldest(&mut self) -> Vec<u64> {
        let Some((&chunk, _)) = self.chunks.iter().next() else {
            return Vec::new();
        };
        self.chunks.remove(&chunk);
        let seqs: Vec<u64> = self.open_in(chunk).into_iter().map(|(s, _)| s).collect();
        for s in &seqs {
            self.open.remove(s);
        }
        seqs
    }

    /// The open picks of `chunk`.
    fn open_in(&self, chunk: u64) -> Vec<(u64, i64)> {
        let mut v: Vec<(u64, i64)> = self
            .open
            .iter()
            .filter(|(_, (c, _))| *c == chunk)
            .map(|(s, (_, p))| (*s, *p))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Runs `cfg`'s input through the pool: the same frames, names and files as
/// [`pipeline::run`] would make locally.
pub fn run_owner(
    cfg: &RunConfig,
    control: &Control,
    taps: &Taps,
    pool: &mut dyn Pool,
    opts: &OwnerOptions,
) -> Result<RunOutcome, PipelineError> {
    let mut reader = PacketReader::open(&cfg.input, &cfg.open, control.stop.clone())?;
    let info = reader.info();
    tracing::info!(
        input = %cfg.input.raw, format = %info.format, codec = %info.codec,
        width = info.width, height = info.height, "opened input (demuxing only)"
    );
    let spec = JobSpec {
        chain: cfg.chain.to_string(),
        format: cfg.encode.format.extension().to_string(),
        quality: cfg.encode.quality,
        raw: cfg.raw_dir.is_some(),
        max_pixels: cfg.open.max_pixels,
    };
    pipeline::run_remote(cfg, control, taps, |c| {
        taps.stats.set_state(StreamState::Running);
        let mut owner = Owner {
            cfg,
            c,
            pool,
            opts,
            spec: &spec,
            ledger: Ledger::default(),
            select: Selector::new(&cfg.sampling),
            first_ms: None,
            seq: 0,
            chunk_no: 0,
            finished: false,
            last_answer: Instant::now(),
            waiting: false,
        };
        owner.run(&mut reader)
    })
}

struct Owner<'o, 'c, 's, 'a> {
    cfg: &'o RunConfig,
    c: &'c Committing<'s, 'a>,
    pool: &'o mut dyn Pool,
    opts: &'o OwnerOptions,
    spec: &'o JobSpec,
    ledger: Ledger,
    select: Selector,
    first_ms: Option<i64>,
    /// The next pick's seq.
    seq: u64,
    chunk_no: u64,
    /// The selection is complete (`--duration`, `--max-frames`): read no further.
    finished: bool,
    /// When the pool last answered (or the run started).
    last_answer: Instant,
    /// The status says "waiting for workers".
    waiting: bool,
}

/// Silence from the pool, with frames outstanding, after which the status says the run
/// is waiting for workers.
const IDLE_POOL: Duration = Duration::from_secs(3);

/// One GOP: its packets in decode order, the time each frame is shown at, and how
/// many of its frames are leading ones (shown before its keyframe).
#[derive(Debug)]
struct Gop {
    packets: Vec<RawPacket>,
    /// When its first packet was read.
    read_at: Instant,
    /// Per packet: when its frame is shown (stream time base), and whether that is the
    /// packet's own pts rather than inferred.
    shown: Vec<(i64, bool)>,
    leading: usize,
}

impl Gop {
    /// Its packets, each with a pts (the inferred one where it had none: a container
    /// needs one on every packet).
    fn stamped(&self) -> impl Iterator<Item = RawPacket> + '_ {
        self.packets
            .iter()
            .zip(&self.shown)
            .map(|(p, (t, _))| RawPacket {
                pts: Some(*t),
                ..p.clone()
            })
    }

    /// `next`: the packet after the GOP (the next keyframe), if any.
    fn new(packets: Vec<RawPacket>, next: Option<&RawPacket>, read_at: Instant) -> Gop {
        let shown = shown_times(&packets, next);
        let key = shown.first().map(|s| s.0);
        let leading = shown
            .iter()
            .skip(1)
            .filter(|(t, _)| key.is_some_and(|k| *t < k))
            .count();
        Gop {
            packets,
            read_at,
            shown,
            leading,
        }
    }
}

/// When each packet's frame is shown: its pts; or, for a packet without one (MPEG-1/2
/// stamp only some), the decode time of the next reference frame after it (a frame
/// shown later than it is decoded), which is when a decoder puts it out — what a local
/// run's best-effort timestamp is. At the end of the stream: after the last one.
fn shown_times(packets: &[RawPacket], next: Option<&RawPacket>) -> Vec<(i64, bool)> {
    let reference = |p: &RawPacket| match (p.pts, p.dts) {
        (None, _) => true,
        (Some(pts), Some(dts)) => pts > dts,
        (Some(_), None) => false,
    };
    let last = packets
        .iter()
        .filter_map(|p| p.dts.map(|d| d + p.duration.max(1)))
        .max()
        .unwrap_or(0);
    (0..packets.len())
        .map(|i| match packets[i].pts {
            Some(t) => (t, true),
            None => {
                let later = packets[i + 1..]
                    .iter()
                    .chain(next)
                    .find(|p| reference(p))
                    .and_then(|p| p.dts);
                (later.unwrap_or(last), false)
            }
        })
        .collect()
}

impl Owner<'_, '_, '_, '_> {
    fn run(&mut self, reader: &mut PacketReader) -> RemoteEnd {
        let mut end = RemoteEnd::default();
        if let Err(e) = self.cut(reader) {
            end.error = Some(e);
        }
        let stopped = self.c.stop().load(Ordering::Relaxed);
        end.stopped = stopped && !self.finished;
        // Wait for the answers to what was sent (after a stop, only for a while).
        let deadline = stopped.then(|| Instant::now() + self.opts.stop_grace);
        while !self.ledger.open.is_empty() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if let Err(e) = self.pump(Duration::from_millis(200)) {
                end.error = Some(e);
                break;
            }
            if !stopped && self.c.stop().load(Ordering::Relaxed) {
                // A stop while waiting: give the answers a grace period, then end.
                return self.abandon(end, Some(Instant::now() + self.opts.stop_grace));
            }
        }
        self.abandon(end, None)
    }

    /// Ends the run: results still outstanding (after `deadline`) are given up.
    fn abandon(&mut self, mut end: RemoteEnd, deadline: Option<Instant>) -> RemoteEnd {
        if let Some(d) = deadline {
            while !self.ledger.open.is_empty() && Instant::now() < d {
                if self.pump(Duration::from_millis(200)).is_err() {
                    break;
                }
            }
            end.stopped = true;
        }
        let mut left: Vec<(u64, i64)> =
            self.ledger.open.drain().map(|(s, (_, p))| (s, p)).collect();
        left.sort_unstable();
        for (seq, pts) in left {
            self.c
                .failed(seq, pts, "no worker answered before the run ended".into());
        }
        if self.ledger.duplicates > 0 {
            tracing::info!(
                "input '{}': {} duplicate result(s) of chunks done twice were ignored",
                self.cfg.input.raw,
                self.ledger.duplicates
            );
        }
        end
    }

    /// Notes how long the pool has been silent: past [`IDLE_POOL`] with frames
    /// outstanding, the status says the run is waiting for workers (nothing is lost:
    /// the chunks wait on the server).
    fn note_silence(&mut self, answered: bool) {
        let stats = self.c.stats();
        if answered {
            self.last_answer = Instant::now();
            if self.waiting {
                self.waiting = false;
                stats.set_state(StreamState::Running);
                tracing::warn!("input '{}': workers answer again", self.cfg.input.raw);
            }
        } else if !self.waiting
            && !self.ledger.open.is_empty()
            && self.last_answer.elapsed() >= IDLE_POOL
        {
            self.waiting = true;
            stats.set_state(StreamState::WaitingForWorkers);
            tracing::warn!(
                "input '{}': waiting for workers ({} frame(s) outstanding; no answer for {} s)",
                self.cfg.input.raw,
                self.ledger.open.len(),
                IDLE_POOL.as_secs()
            );
        }
    }

    /// Reads the input and sends its chunks.
    fn cut(&mut self, reader: &mut PacketReader) -> Result<(), SourceError> {
        let keys_only = self.cfg.open.keyframes_only;
        let live = self.cfg.input.is_live();
        // The GOP being collected (from its keyframe), and the one before it with its
        // frame times.
        let mut gop: Vec<RawPacket> = Vec::new();
        let mut before: Option<Gop> = None;
        let mut gop_read_at = Instant::now();
        loop {
            if self.finished || self.c.stop().load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some(p) = reader.next_packet()? else {
                break;
            };
            // A live input's answers are committed as they come, not only when the
            // backlog is full.
            if live && !self.ledger.open.is_empty() {
                self.pump(Duration::ZERO)?;
            }
            if keys_only {
                if !p.key {
                    self.c.stats().skipped(SkipReason::Keyframes, 1);
                    continue;
                }
                let g = Gop::new(vec![p], None, Instant::now());
                self.send(reader, None, &g)?;
                continue;
            }
            if gop.is_empty() && !p.key {
                // Before the first keyframe: nothing decodes from it.
                continue;
            }
            if p.key && !gop.is_empty() {
                let g = Gop::new(std::mem::take(&mut gop), Some(&p), gop_read_at);
                self.send(reader, before.as_ref(), &g)?;
                before = Some(g);
            }
            if gop.is_empty() {
                gop_read_at = Instant::now();
            }
            gop.push(p);
        }
        if !gop.is_empty() {
            let g = Gop::new(gop, None, gop_read_at);
            self.send(reader, before.as_ref(), &g)?;
        }
        Ok(())
    }

    /// Picks the frames of `gop` and sends it as a chunk if any is picked. An open GOP
    /// (frames after its keyframe in decode order but shown before it: leading frames,
    /// which refer to the GOP before) goes with the GOP `before` it as a lead-in that
    /// the worker decodes for references and does not pick from.
    fn send(
        &mut self,
        reader: &PacketReader,
        before: Option<&Gop>,
        gop: &Gop,
    ) -> Result<(), SourceError> {
        let mut shown: Vec<(i64, bool)> = gop
            .shown
            .iter()
            .map(|(t, exact)| (reader.ts_ms(*t), *exact))
            .collect();
        shown.sort_unstable();
        let mut picks = Vec::new();
        for (rank, (t, exact)) in shown.into_iter().enumerate() {
            let first = *self.first_ms.get_or_insert(t);
            let rel = (t - first) as f64;
            if self.select.past_end(rel)
                || self.cfg.sampling.max_frames.is_some_and(|m| self.seq >= m)
            {
                self.finished = true;
                break;
            }
            match self.select.pick(rel) {
                Some(reason) => self.c.stats().skipped(reason, 1),
                None => {
                    picks.push(Pick {
                        seq: self.seq,
                        pts_ms: t,
                        rank: u32::try_from(rank).unwrap_or(u32::MAX),
                        exact,
                    });
                    self.seq += 1;
                }
            }
        }
        if picks.is_empty() {
            return Ok(());
        }
        let (mut packets, skip): (Vec<RawPacket>, u32) = match before {
            Some(b) if gop.leading > 0 => (
                b.stamped().chain(gop.stamped()).collect(),
                u32::try_from(b.packets.len() - b.leading).unwrap_or(u32::MAX),
            ),
            _ => (gop.stamped().collect(), 0),
        };
        packets.shrink_to_fit();
        let nut = reader.pack(&packets, &self.opts.scratch)?;
        let chunk = self.chunk_no;
        self.chunk_no += 1;
        let msg = wire::encode_chunk(
            &ChunkHeader {
                job: self.opts.job.clone(),
                chunk,
                spec: self.spec.clone(),
                picks: picks.clone(),
                skip,
            },
            &nut,
        );
        while self.ledger.chunks.len() >= self.opts.max_in_flight.max(1) {
            // A live input does not wait for the pool: whole chunks are dropped, as the
            // overload policy says, and counted.
            match self.cfg.overload {
                Overload::Block => {}
                Overload::DropNewest => {
                    for p in &picks {
                        self.c.dropped(p.seq, DropReason::DropNewest);
                    }
                    return Ok(());
                }
                Overload::DropOldest => {
                    for seq in self.ledger.drop_oldest() {
                        self.c.dropped(seq, DropReason::DropOldest);
                    }
                    continue;
                }
            }
            if self.c.stop().load(Ordering::Relaxed) {
                // Not sent: these frames are not made.
                for p in &picks {
                    self.c
                        .failed(p.seq, p.pts_ms, "not sent: the run was stopped".into());
                }
                return Ok(());
            }
            self.pump(Duration::from_millis(200))?;
        }
        self.ledger.sent(chunk, &picks, gop.read_at);
        self.pool
            .publish(chunk, msg)
            .map_err(|e| self.cluster_error(e))?;
        Ok(())
    }

    fn cluster_error(&self, e: super::PoolError) -> SourceError {
        SourceError::Cluster {
            input: self.cfg.input.raw.clone(),
            reason: e.to_string(),
        }
    }

    /// Takes the results that arrive within `wait` (and chunks the pool gave up on).
    fn pump(&mut self, wait: Duration) -> Result<(), SourceError> {
        let mut wait = wait;
        loop {
            let msg = self
                .pool
                .next_result(wait)
                .map_err(|e| self.cluster_error(e))?;
            if wait > Duration::ZERO || msg.is_some() {
                self.note_silence(msg.is_some());
            }
            let Some(msg) = msg else { break };
            wait = Duration::ZERO;
            let r = match wire::decode_result(&msg) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(
                        "input '{}': a result that is not one: {e}",
                        self.cfg.input.raw
                    );
                    continue;
                }
            };
            if r.header.job != self.opts.job {
                continue;
            }
            let seq = r.header.seq;
            let Some((pts, since)) = self.ledger.answered(seq, r.header.decoded, self.c.stats())
            else {
                continue;
            };
            match r.header.outcome {
                wire::Outcome::Frame { .. } => self.c.deliver(seq, pts, r.filtered, r.raw, since),
                wire::Outcome::Failed { reason } => self.c.failed(seq, pts, reason),
            }
        }
        for chunk in self.pool.take_failed() {
            for (seq, pts) in self.ledger.open_in(chunk) {
                if self.ledger.answered(seq, 0, self.c.stats()).is_some() {
                    self.c.failed(
                        seq,
                        pts,
                        format!("chunk {chunk} failed on every worker that tried it"),
                    );
                }
            }
        }
        Ok(())
    }
}
