//! `frameflow watch`: a hot folder. Complete images that appear in a directory are
//! filtered into the output directory, durably, and only then deleted, moved to
//! `--done` or kept. See `design/hot-folder.md` for the crash invariants.
//!
//! The directory itself is the queue: the watcher only hints which names to look at
//! (a bounded channel; when it is full, or inotify's own queue overflows, the directory
//! is scanned again), and the in-memory state is bounded by [`MAX_TRACKED`] names.

pub mod check;
pub mod fsops;
mod worker;

use crate::batch::ImageJob;
use crate::runtime::stats::{Report, Stats};
use crate::runtime::{Clock, Control, SystemClock};
use crate::setting::Setting;
use crate::sink::atomic::{self, AtomicDir, WriteError};
use crate::sink::naming::{NameValues, Template};
use check::is_ignored_name;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, never, select};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use worker::{Existing, InputProblem, Outcome, Pending, Recycler, Sig, Step, Worker, Writer};

/// Most names tracked in memory at once (queued, in flight, waiting for a retry).
pub const MAX_TRACKED: usize = 4096;
/// Capacity of the watcher → main loop channel; past it, a rescan.
const EVENT_QUEUE: usize = 8192;
/// An incomplete file goes to the failed directory only after this many attempts...
const MIN_ATTEMPTS: u32 = 5;
/// ...and after staying unchanged (size, mtime, nobody writing) for this long.
const STABLE_FOR: Duration = Duration::from_millis(2500);
const STATS_EVERY: Duration = Duration::from_secs(2);

/// What happens to an input once its output is durably in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposal {
    Delete,
    MoveTo(PathBuf),
    Keep,
}

/// Settings of one `watch` run.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub dir: PathBuf,
    /// What to make of each input. Its template should pass [`check_template`]: a
    /// restarted run recognises its earlier outputs by their names.
    pub job: ImageJob,
    pub failed_dir: PathBuf,
    pub disposal: Disposal,
    pub once: bool,
    pub recursive: bool,
    pub stats_json: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A setting that cannot work (a usage error).
    #[error("{0}")]
    Config(String),
    #[error("{}: {step}: {source}", path.display())]
    Dir {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    #[error("watching {}: {source}", path.display())]
    Notify {
        path: PathBuf,
        source: notify::Error,
    },
    #[error(transparent)]
    Output(#[from] WriteError),
    #[error("the worker threads stopped unexpectedly")]
    Workers,
}

/// How a run ended.
#[derive(Debug)]
pub struct WatchSummary {
    pub report: Report,
    pub written: u64,
    /// Inputs whose output an earlier (killed) run had already made.
    pub already_done: u64,
    pub failed: u64,
    /// Ended by SIGINT/SIGTERM.
    pub stopped: bool,
}

/// `--name` must give each input one fixed name, so that a restart can find the output
/// of an input it made before being killed: `{stem}` is required, `{index}`, `{pts}`
/// and `{time}` are refused.
pub fn check_template(t: &Template) -> Result<(), String> {
    let v = |stem, index, time| NameValues {
        index,
        pts_ms: index as i64,
        time,
        stream: "watch",
        stem,
        ext: "jpg",
    };
    if t.render(&v("a", 0, "T0")) != t.render(&v("a", 7, "T1")) {
        return Err(format!(
            "{} '{t}': watch needs a fixed name per input ({{stem}}, {{ext}} and text); \
{{index}}, {{pts}} and {{time}} would give a restarted run no way to recognise its outputs",
            Setting::Name
        ));
    }
    if t.render(&v("a", 0, "T0")) == t.render(&v("b", 0, "T0")) {
        return Err(format!(
            "{} '{t}': watch needs {{stem}} in the name (one output per input)",
            Setting::Name
        ));
    }
    Ok(())
}

/// The hot folder's bookkeeping for an input that was not (yet) a whole image.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Retry {
    attempts: u32,
    stable_since: Instant,
    sig: Option<Sig>,
}

/// What to do with an input an attempt found incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RetryVerdict {
    /// Try again after this long.
    After(Duration),
    /// Tried often enough and unchanged for long enough: it is not going to complete.
    Fail,
}

impl Retry {
    /// One more attempt found the input incomplete at `now`. `sig` is its size and mtime
    /// then; `busy`: a writer still has it open; `changed`: an event said it changed
    /// while the attempt ran. It fails only after [`MIN_ATTEMPTS`] attempts *and*
    /// [`STABLE_FOR`] without change: a slow writer is waited for however long it takes.
    fn incomplete(
        prev: Option<Retry>,
        now: Instant,
        sig: Option<Sig>,
        busy: bool,
        changed: bool,
    ) -> (Retry, RetryVerdict) {
        let mut r = prev.unwrap_or(Retry {
            attempts: 0,
            stable_since: now,
            sig,
        });
        r.attempts += 1;
        if busy || changed || r.sig != sig {
            r.stable_since = now;
        }
        r.sig = sig;
        let verdict =
            if r.attempts >= MIN_ATTEMPTS && now.duration_since(r.stable_since) >= STABLE_FOR {
                RetryVerdict::Fail
            } else if changed {
                RetryVerdict::After(Duration::ZERO)
            } else {
                RetryVerdict::After(Duration::from_millis(100 << r.attempts.min(3)))
            };
        (r, verdict)
    }
}

#[derive(Debug)]
enum State {
    Queued(Option<Retry>),
    InFlight {
        requeue: bool,
        retry: Option<Retry>,
    },
    Waiting {
        due: Instant,
        retry: Retry,
    },
    /// Could not be handled (output or input unwritable): left alone until a restart.
    Parked,
}

struct Dirs {
    /// Canonical watched directory.
    dir: PathBuf,
    /// Our own directories inside it, relative to it.
    own: Vec<PathBuf>,
}

fn dir_err(path: &Path, step: &'static str) -> impl FnOnce(io::Error) -> WatchError + use<> {
    let path = path.to_path_buf();
    move |source| WatchError::Dir { path, step, source }
}

fn prepare(cfg: &WatchConfig) -> Result<Dirs, WatchError> {
    let dir = cfg
        .dir
        .canonicalize()
        .map_err(dir_err(&cfg.dir, "opening the watched directory"))?;
    if !dir.is_dir() {
        return Err(WatchError::Config(format!(
            "{}: not a directory",
            cfg.dir.display()
        )));
    }
    let mut own_dirs = vec![
        (&cfg.job.out_dir, Setting::Out),
        (&cfg.failed_dir, Setting::Failed),
    ];
    if let Disposal::MoveTo(d) = &cfg.disposal {
        own_dirs.push((d, Setting::Done));
    }
    let mut own = Vec::new();
    for (d, flag) in own_dirs {
        crate::sink::atomic::create_dirs(d).map_err(dir_err(d, "creating the directory"))?;
        let c = d
            .canonicalize()
            .map_err(dir_err(d, "opening the directory"))?;
        if c == dir {
            return Err(WatchError::Config(format!(
                "{flag} {} is the watched directory itself",
                d.display()
            )));
        }
        if let Ok(rel) = c.strip_prefix(&dir) {
            own.push(rel.to_path_buf());
        }
    }
    Ok(Dirs { dir, own })
}

impl Dirs {
    /// The input name of `rel` (relative to the watched directory) when it is one.
    fn accepts(&self, rel: &Path, recursive: bool) -> bool {
        let comps: Vec<_> = rel.components().collect();
        if comps.is_empty() || (!recursive && comps.len() != 1) {
            return false;
        }
        for (i, c) in comps.iter().enumerate() {
            let Component::Normal(n) = c else {
                return false;
            };
            let n = n.to_string_lossy();
            let last = i + 1 == comps.len();
            if (last && is_ignored_name(&n)) || (!last && n.starts_with('.')) {
                return false;
            }
        }
        !self.own.iter().any(|o| rel.starts_with(o))
    }
}

struct Scan {
    picked: BTreeSet<PathBuf>,
    more: bool,
    candidates: u64,
}

/// The `room` first names (in name order) that are inputs and not yet tracked. With
/// `--keep-input`, inputs whose output exists are finished and left out.
fn scan(
    cfg: &WatchConfig,
    dirs: &Dirs,
    known: &HashMap<PathBuf, State>,
    room: usize,
) -> Result<Scan, WatchError> {
    let mut s = Scan {
        picked: BTreeSet::new(),
        more: false,
        candidates: 0,
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(sub) = stack.pop() {
        let abs = dirs.dir.join(&sub);
        let rd = match fs::read_dir(&abs) {
            Ok(rd) => rd,
            Err(e) if sub.as_os_str().is_empty() => {
                return Err(dir_err(&cfg.dir, "reading the watched directory")(e));
            }
            Err(_) => continue,
        };
        for entry in rd.flatten() {
            let rel = sub.join(entry.file_name());
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                if cfg.recursive
                    && !entry.file_name().to_string_lossy().starts_with('.')
                    && !dirs.own.iter().any(|o| rel.starts_with(o))
                {
                    stack.push(rel);
                }
                continue;
            }
            if !(ft.is_file() || ft.is_symlink())
                || known.contains_key(&rel)
                || !dirs.accepts(&rel, cfg.recursive)
            {
                continue;
            }
            if cfg.disposal == Disposal::Keep && kept_and_done(cfg, &dirs.dir.join(&rel), &rel) {
                continue;
            }
            s.candidates += 1;
            s.picked.insert(rel);
            if s.picked.len() > room {
                s.picked.pop_last();
                s.more = true;
            }
        }
    }
    Ok(s)
}

/// `--keep-input`: the input's output exists (it carries the input's mtime).
fn kept_and_done(cfg: &WatchConfig, path: &Path, rel: &Path) -> bool {
    let (Ok(meta), Ok(head)) = (fs::metadata(path), worker::read_head(path)) else {
        return false;
    };
    let Ok(mtime) = meta.modified() else {
        return false;
    };
    let Ok(out_rel) = worker::output_rel(&cfg.job, rel, cfg.job.output_format(&head)) else {
        return false;
    };
    matches!(
        worker::find_existing(&cfg.job.out_dir, &out_rel, mtime),
        Existing::Done(_)
    )
}

/// Starts the inotify watcher: ready names go to `tx`; overflow of either queue sets
/// `rescan`.
fn start_watcher(
    cfg: &WatchConfig,
    dir: &Path,
    tx: Sender<PathBuf>,
    rescan: Arc<AtomicBool>,
) -> Result<notify::INotifyWatcher, WatchError> {
    use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
    use notify::{EventKind, RecursiveMode, Watcher};
    let recursive = cfg.recursive;
    let handler = move |res: notify::Result<notify::Event>| match res {
        Ok(ev) => {
            if ev.need_rescan() {
                rescan.store(true, Ordering::SeqCst);
            }
            let ready = match ev.kind {
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => ev.paths.first(),
                EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => {
                    ev.paths.last()
                }
                EventKind::Create(CreateKind::Folder) if recursive => {
                    rescan.store(true, Ordering::SeqCst);
                    None
                }
                _ => None,
            };
            if let Some(p) = ready
                && let Err(TrySendError::Full(_)) = tx.try_send(p.clone())
            {
                rescan.store(true, Ordering::SeqCst);
            }
        }
        Err(e) => {
            tracing::debug!("watcher: {e}; rescanning");
            rescan.store(true, Ordering::SeqCst);
        }
    };
    let notify_err = |source| WatchError::Notify {
        path: dir.to_path_buf(),
        source,
    };
    let mut w =
        notify::INotifyWatcher::new(handler, notify::Config::default()).map_err(notify_err)?;
    let mode = if recursive {
        RecursiveMode::Recursive
    } else {
        RecursiveMode::NonRecursive
    };
    w.watch(dir, mode).map_err(notify_err)?;
    Ok(w)
}

/// Runs the hot folder until `control.stop` (or, with `once`, until the directory holds
/// no more inputs). `on_progress(done, total)` is called after each input.
pub fn watch(
    cfg: &WatchConfig,
    control: &Control,
    on_progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<WatchSummary, WatchError> {
    watch_with_clock(cfg, control, &SystemClock, on_progress)
}

/// [`watch`] on the given clock (the retry bookkeeping's time).
pub fn watch_with_clock(
    cfg: &WatchConfig,
    control: &Control,
    clock: &dyn Clock,
    on_progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<WatchSummary, WatchError> {
    let dirs = prepare(cfg)?;
    // Two views of the output directory: temporaries are staged without a sync (the
    // worker syncs after setting the mark), commits sync the directory after the rename.
    let stage = AtomicDir::open(&cfg.job.out_dir, false)?;
    let commit = AtomicDir::open(&cfg.job.out_dir, true)?;
    atomic::remove_stale_temps(&cfg.failed_dir);
    if let Disposal::MoveTo(d) = &cfg.disposal {
        atomic::remove_stale_temps(d);
    }
    let stats = Stats::new("watch", &cfg.dir.display().to_string());
    let rescan = Arc::new(AtomicBool::new(false));
    let (ev_tx, ev_rx_real) = bounded::<PathBuf>(EVENT_QUEUE);
    let (_watcher, ev_rx): (Option<notify::INotifyWatcher>, Receiver<PathBuf>) = if cfg.once {
        (None, never())
    } else {
        let w = start_watcher(cfg, &dirs.dir, ev_tx, rescan.clone())?;
        (Some(w), ev_rx_real)
    };
    // Workers decode, filter and encode (CPU); writers write, sync, rename and dispose
    // (mostly waiting for the disk), so that the cores stay busy while outputs are synced.
    let workers = cfg.job.workers.max(1);
    // Writers mostly wait on fsync; with small images they are the bottleneck, and
    // concurrent fsyncs share the disk's flushes (measured: 10k small files, 2 writers
    // 15-17 s, 4 writers 10 s, 8 writers 8-10 s).
    let writers = (2 * workers).clamp(4, 16);
    // Jobs queued ahead of the workers: enough to keep them busy while the main thread
    // rescans a large directory (about 1-2 µs per entry, 15 µs per finished input with
    // --keep-input), and only names (SIGINT skips the queued ones).
    let queued = (workers * 8).max(16);
    let (job_tx, job_rx) = bounded::<PathBuf>(queued);
    let (write_tx, write_rx) = bounded::<(PathBuf, Box<Pending>)>(writers);
    let (res_tx, res_rx) = bounded::<(PathBuf, Outcome)>(queued + workers + 2 * writers + 1);
    let recycled = Recycler::new(workers + 2 * writers + 1);
    std::thread::scope(|scope| {
        for i in 0..workers {
            let job_rx = job_rx.clone();
            let res_tx = res_tx.clone();
            let write_tx = write_tx.clone();
            let (stats, recycled) = (&stats, &recycled);
            let stop = &control.stop;
            let spawned = std::thread::Builder::new()
                .name(format!("ff-watch-{i}"))
                .spawn_scoped(scope, move || {
                    let mut w = Worker::new(cfg, stats, recycled);
                    for rel in job_rx {
                        if stop.load(Ordering::Relaxed) {
                            continue;
                        }
                        let sent = match w.process(&rel) {
                            Step::Done(out) => res_tx.send((rel, out)).is_ok(),
                            Step::Write(p) => write_tx.send((rel, p)).is_ok(),
                        };
                        if !sent {
                            break;
                        }
                    }
                });
            if spawned.is_err() {
                return Err(WatchError::Workers);
            }
        }
        drop(write_tx);
        for i in 0..writers {
            let write_rx = write_rx.clone();
            let res_tx = res_tx.clone();
            let (stage, commit, stats, recycled) = (&stage, &commit, &stats, &recycled);
            let spawned = std::thread::Builder::new()
                .name(format!("ff-write-{i}"))
                .spawn_scoped(scope, move || {
                    let w = Writer::new(cfg, stage, commit, stats, recycled);
                    // Every encoded output is written, stopping or not: it is in flight.
                    for (rel, p) in write_rx {
                        if res_tx.send((rel, w.finish(p))).is_err() {
                            break;
                        }
                    }
                });
            if spawned.is_err() {
                return Err(WatchError::Workers);
            }
        }
        drop(write_rx);
        drop(res_tx);
        let mut main = MainLoop {
            cfg,
            clock,
            dirs: &dirs,
            stats: &stats,
            known: HashMap::new(),
            ready: VecDeque::new(),
            need_scan: true,
            waiting: 0,
            parked: 0,
            completed: 0,
            total: 0,
            written: 0,
            already_done: 0,
            failed: 0,
            on_progress,
        };
        let res = main.run(control, &rescan, &ev_rx, &job_tx, &res_rx);
        drop(job_tx);
        // Finish what is in flight (workers skip queued jobs once stopping).
        for (rel, out) in res_rx.iter() {
            main.outcome(rel, out);
        }
        res?;
        let report = Report::new(vec![stats.snapshot()]);
        if let Some(p) = &cfg.stats_json {
            report
                .write(p)
                .map_err(dir_err(p, "writing the statistics"))?;
        }
        Ok(WatchSummary {
            report,
            written: main.written,
            already_done: main.already_done,
            failed: main.failed,
            stopped: control.stop.load(Ordering::Relaxed),
        })
    })
}

struct MainLoop<'a> {
    cfg: &'a WatchConfig,
    clock: &'a dyn Clock,
    dirs: &'a Dirs,
    stats: &'a Stats,
    known: HashMap<PathBuf, State>,
    ready: VecDeque<PathBuf>,
    need_scan: bool,
    waiting: usize,
    parked: usize,
    completed: u64,
    total: u64,
    written: u64,
    already_done: u64,
    failed: u64,
    on_progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl MainLoop<'_> {
    fn run(
        &mut self,
        control: &Control,
        rescan: &AtomicBool,
        ev_rx: &Receiver<PathBuf>,
        job_tx: &Sender<PathBuf>,
        res_rx: &Receiver<(PathBuf, Outcome)>,
    ) -> Result<(), WatchError> {
        let mut last_stats = self.clock.now();
        loop {
            if control.stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            if rescan.swap(false, Ordering::SeqCst) {
                tracing::debug!("rescanning {}", self.cfg.dir.display());
                self.need_scan = true;
            }
            if self.need_scan && self.known.len() <= MAX_TRACKED / 2 {
                let s = scan(
                    self.cfg,
                    self.dirs,
                    &self.known,
                    MAX_TRACKED - self.known.len(),
                )?;
                self.need_scan = s.more;
                let extra = s.candidates - s.picked.len() as u64;
                for rel in s.picked {
                    self.known.insert(rel.clone(), State::Queued(None));
                    self.ready.push_back(rel);
                }
                self.total = self.completed + self.known.len() as u64 + extra;
                (self.on_progress)(self.completed, self.total);
            }
            let now = self.clock.now();
            let mut next_due = now + Duration::from_millis(200);
            if self.waiting > 0 {
                for (rel, st) in self.known.iter_mut() {
                    if let State::Waiting { due, retry } = st {
                        if *due <= now {
                            *st = State::Queued(Some(*retry));
                            self.waiting -= 1;
                            self.ready.push_back(rel.clone());
                        } else {
                            next_due = next_due.min(*due);
                        }
                    }
                }
            }
            while let Some(rel) = self.ready.pop_front() {
                let retry = match self.known.get(&rel) {
                    Some(State::Queued(r)) => *r,
                    _ => continue,
                };
                match job_tx.try_send(rel.clone()) {
                    Ok(()) => {
                        self.known.insert(
                            rel,
                            State::InFlight {
                                requeue: false,
                                retry,
                            },
                        );
                    }
                    Err(TrySendError::Full(rel)) => {
                        self.ready.push_front(rel);
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => return Err(WatchError::Workers),
                }
            }
            if self.cfg.once && self.known.len() == self.parked && !self.need_scan {
                return Ok(());
            }
            if self.clock.now().duration_since(last_stats) >= STATS_EVERY {
                last_stats = self.clock.now();
                self.write_stats();
            }
            let timeout = next_due.saturating_duration_since(self.clock.now());
            select! {
                recv(res_rx) -> msg => match msg {
                    Ok((rel, out)) => self.outcome(rel, out),
                    Err(_) => return Err(WatchError::Workers),
                },
                recv(ev_rx) -> msg => {
                    if let Ok(p) = msg {
                        self.event(&p);
                    }
                },
                default(timeout) => {}
            }
        }
    }

    fn write_stats(&self) {
        if let Some(p) = &self.cfg.stats_json
            && let Err(e) = Report::new(vec![self.stats.snapshot()]).write(p)
        {
            tracing::warn!("writing {} {}: {e}", Setting::StatsJson, p.display());
        }
    }

    /// A name the watcher says is ready.
    fn event(&mut self, abs: &Path) {
        let Ok(rel) = abs.strip_prefix(&self.dirs.dir) else {
            return;
        };
        if !self.dirs.accepts(rel, self.cfg.recursive) {
            return;
        }
        let full = self.known.len() >= MAX_TRACKED;
        match self.known.get_mut(rel) {
            None if full => self.need_scan = true,
            None => {
                self.known.insert(rel.to_path_buf(), State::Queued(None));
                self.ready.push_back(rel.to_path_buf());
                self.total += 1;
            }
            Some(State::InFlight { requeue, .. }) => *requeue = true,
            Some(st @ State::Waiting { .. }) => {
                if let State::Waiting { retry, .. } = st {
                    let mut r = *retry;
                    r.stable_since = self.clock.now();
                    *st = State::Queued(Some(r));
                    self.waiting -= 1;
                    self.ready.push_back(rel.to_path_buf());
                }
            }
            Some(st @ State::Parked) => {
                // Something changed: worth another try.
                *st = State::Queued(None);
                self.parked -= 1;
                self.ready.push_back(rel.to_path_buf());
            }
            Some(State::Queued(_)) => {}
        }
    }

    fn finished(&mut self, rel: PathBuf, requeue: bool) {
        if requeue {
            self.known.insert(rel.clone(), State::Queued(None));
            self.ready.push_back(rel);
            self.total += 1;
        } else {
            self.known.remove(&rel);
        }
        self.completed += 1;
        (self.on_progress)(self.completed, self.total.max(self.completed));
    }

    fn outcome(&mut self, rel: PathBuf, out: Outcome) {
        let (requeue, retry) = match self.known.get(&rel) {
            Some(State::InFlight { requeue, retry }) => (*requeue, *retry),
            Some(State::Queued(r)) => (false, *r),
            _ => (false, None),
        };
        let path = self.cfg.dir.join(&rel);
        match out {
            Outcome::Written(p) => {
                tracing::debug!("{} → {}", path.display(), p.display());
                self.written += 1;
                self.finished(rel, requeue);
            }
            Outcome::AlreadyDone(p) => {
                tracing::info!(
                    "{}: output {} was made before a restart; input disposed of",
                    path.display(),
                    p.display()
                );
                self.already_done += 1;
                self.finished(rel, requeue);
            }
            Outcome::Vanished => {
                tracing::debug!("{}: gone before it could be opened", path.display());
                self.known.remove(&rel);
                if requeue {
                    self.known.insert(rel.clone(), State::Queued(None));
                    self.ready.push_back(rel);
                } else {
                    self.total = self.total.saturating_sub(1);
                }
            }
            Outcome::Replaced => {
                self.known.insert(rel.clone(), State::Queued(None));
                self.ready.push_back(rel);
            }
            Outcome::Incomplete { reason, sig, busy } => {
                let now = self.clock.now();
                match Retry::incomplete(retry, now, sig, busy, requeue) {
                    (_, RetryVerdict::Fail) => self.fail(rel, &InputProblem::Incomplete(reason)),
                    (r, RetryVerdict::After(delay)) => {
                        let due = now + delay;
                        self.known.insert(rel, State::Waiting { due, retry: r });
                        self.waiting += 1;
                    }
                }
            }
            Outcome::Unusable(problem) => self.fail(rel, &problem),
            Outcome::Stuck(msg) => {
                tracing::error!("{}: {msg}; left in place", path.display());
                Stats::add(&self.stats.failed, 1);
                self.failed += 1;
                self.known.insert(rel, State::Parked);
                self.parked += 1;
                self.completed += 1;
                (self.on_progress)(self.completed, self.total.max(self.completed));
            }
        }
    }

    /// Moves an unusable input to the failed directory, with one line naming it.
    fn fail(&mut self, rel: PathBuf, reason: &InputProblem) {
        let path = self.cfg.dir.join(&rel);
        match fsops::move_into(&path, &self.cfg.failed_dir, &rel.to_string_lossy()) {
            Ok(dest) => {
                tracing::error!("{}: {reason}; moved to {}", path.display(), dest.display());
                Stats::add(&self.stats.failed, 1);
                self.failed += 1;
                self.finished(rel, false);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.known.remove(&rel);
                self.total = self.total.saturating_sub(1);
            }
            Err(e) => {
                tracing::error!(
                    "{}: {reason}; could not move it to {}: {e}",
                    path.display(),
                    self.cfg.failed_dir.display()
                );
                Stats::add(&self.stats.failed, 1);
                self.failed += 1;
                self.known.insert(rel, State::Parked);
                self.parked += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SimulatedClock;
    use std::time::SystemTime;

    /// Attempts on simulated time, each `every` after the last, until the verdict is
    /// `Fail`; returns how many attempts that took (or `None` within `max`).
    fn attempts_until_failed(
        clock: &SimulatedClock,
        every: Duration,
        max: u32,
        sig_at: impl Fn(u32) -> Option<Sig>,
        busy_at: impl Fn(u32) -> bool,
    ) -> Option<u32> {
        let mut retry = None;
        for n in 1..=max {
            let (r, verdict) = Retry::incomplete(retry, clock.now(), sig_at(n), busy_at(n), false);
            if verdict == RetryVerdict::Fail {
                return Some(n);
            }
            let RetryVerdict::After(d) = verdict else {
                unreachable!()
            };
            assert!(
                d >= Duration::from_millis(200) && d <= Duration::from_millis(800),
                "{d:?}"
            );
            retry = Some(r);
            clock.advance(every.max(d));
        }
        None
    }

    fn sig(size: u64) -> Option<Sig> {
        Some((size, SystemTime::UNIX_EPOCH))
    }

    #[test]
    fn an_unchanged_truncated_file_fails_after_min_attempts_and_stable_for() {
        let clock = SimulatedClock::default();
        // Quick attempts: MIN_ATTEMPTS is reached first, then STABLE_FOR decides.
        let n = attempts_until_failed(
            &clock,
            Duration::from_millis(100),
            100,
            |_| sig(10),
            |_| false,
        );
        let n = n.expect("never failed");
        assert!(n >= MIN_ATTEMPTS, "{n}");
        // Slow attempts: STABLE_FOR is over at once, MIN_ATTEMPTS decides.
        let clock = SimulatedClock::default();
        let n = attempts_until_failed(&clock, STABLE_FOR * 2, 100, |_| sig(10), |_| false);
        assert_eq!(n, Some(MIN_ATTEMPTS));
    }

    #[test]
    fn a_file_still_growing_or_held_open_is_never_failed() {
        let clock = SimulatedClock::default();
        let growing = attempts_until_failed(
            &clock,
            Duration::from_secs(1),
            200,
            |n| sig(u64::from(n)),
            |_| false,
        );
        assert_eq!(growing, None);
        let clock = SimulatedClock::default();
        let held =
            attempts_until_failed(&clock, Duration::from_secs(1), 200, |_| sig(10), |_| true);
        assert_eq!(held, None);
        // Once the writer lets go and it stops changing, it fails after STABLE_FOR.
        let clock = SimulatedClock::default();
        let let_go =
            attempts_until_failed(&clock, Duration::from_secs(1), 200, |_| sig(10), |n| n < 50);
        let n = let_go.expect("never failed");
        assert!(
            n > 50 && n <= 50 + 1 + STABLE_FOR.as_secs() as u32 + MIN_ATTEMPTS,
            "{n}"
        );
    }

    #[test]
    fn a_change_during_an_attempt_retries_at_once() {
        let clock = SimulatedClock::default();
        let (r, v) = Retry::incomplete(None, clock.now(), sig(1), false, true);
        assert_eq!(v, RetryVerdict::After(Duration::ZERO));
        assert_eq!(r.attempts, 1);
    }
}
