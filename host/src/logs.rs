//! sigd's logs, on stderr: lines for people or JSON objects (one per
//! line), filtered by `RUST_LOG` (levels, per target). When stderr is the journal (systemd says
//! so in `$JOURNAL_STREAM`: the device and inode of the stream it gave),
//! every line starts with its syslog priority (`<3>` error, `<4>` warning,
//! `<6>` info, `<7>` debug and trace), which journald takes off and keeps
//! as the entry's priority; lines for people then carry no timestamp of
//! their own, the journal keeps one.
//!
//! Lines are written off the request path: an event is formatted where it
//! happens and queued; a thread of its own ([`LogWriter`]) writes what is
//! queued to stderr, many lines per write(2). An audit event is queued
//! before it is formatted ([`defer`]): the writer thread formats it, in
//! its place among the lines and with the time it happened. A request
//! never waits on stderr: when the queue holds [`MAX_QUEUED_BYTES`]
//! (stderr is a pipe no one reads, say), or half that for any line but the
//! audit event of root's or the operator's request, or an eighth for the
//! audit events of any one other caller and the lines it makes sigd log
//! ([`Room`], [`charged_to`]: a flood from one caller leaves room for the
//! others, and all of theirs for root's and the operator's), a line or
//! event is dropped,
//! counted (`sigd_log_lines_dropped_total`, [`dropped_lines`]) and, once
//! there is room, the drops are logged. Lines a write to stderr fails to
//! take (its reader gone) are counted the same way.
//!
//! What a deferred event holds was allocated by the thread that deferred
//! it; freed on the writer thread, every `free` would take that thread's
//! malloc arena lock while it allocates for the next request, and each
//! clash costs both a futex and a context switch (BENCHMARKS.md, the
//! seventeenth round). So an async worker thread ([`runtime`]) frees what
//! it deferred, once logged, itself: the writer thread leaves it in the
//! thread's [`Graveyard`], up to [`GRAVEYARD_BYTES`], and frees it there
//! itself if the thread has freed nothing for a round (it is idle then),
//! or when no line is queued.
//!
//! JSON objects are written by [`JsonLines`]: tracing's own JSON format,
//! except that an audit event's fields, one JSON object already (its
//! decision `record` an object inside it), are written as the line's own
//! members, not as a string holding them.

use crate::cli::LogFormat;
use crate::shares::{Holder, Share, Shares};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, mpsc};
use std::time::{Duration, SystemTime};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{self, DefaultFields, DefaultVisitor, JsonFields, Writer};
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The field of an audit event that holds its fields written already (see
/// `audit.rs`): ` name=value` pairs, escaped, the record last, or one JSON
/// object. Lines for people carry the pairs as they are; JSON lines, the
/// object's members as the line's own.
pub const INLINE_FIELD: &str = "audit";

/// Whether lines are JSON objects (`--log-format json`).
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether sigd logs JSON objects (`--log-format json`) rather than lines
/// for people.
pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// The most bytes of log lines queued for stderr; past it lines are dropped
/// (and counted) rather than a request made to wait.
pub const MAX_QUEUED_BYTES: usize = 8 << 20;

/// How much of the log queue an event may fill.
#[derive(Clone, Debug, PartialEq)]
pub enum Room {
    /// All of it: the audit event of a request from root or the operator
    /// (the callers [`Holder::trusts`](crate::shares::Holder::trusts)).
    All,
    /// Half: any other line but a caller's (below).
    Half,
    /// The audit events of a caller held to shares, who can send requests
    /// without end, and the lines its requests and escalations make sigd
    /// log ([`charged_to`]): its share ([`Shares`]: an eighth of the queue,
    /// all such callers' together half). A flood of one caller's cannot
    /// crowd another's out of the log, nor all of theirs root's or the
    /// operator's.
    Share(Holder),
}

impl Room {
    /// The most bytes queued with which such an event is still taken.
    fn limit(&self) -> usize {
        match self {
            Room::All => MAX_QUEUED_BYTES,
            Room::Half | Room::Share(_) => MAX_QUEUED_BYTES / 2,
        }
    }
}

/// The queue's bytes, shared among callers held to shares ([`Room::Share`]).
static SHARES: LazyLock<Arc<Shares>> = LazyLock::new(|| Shares::of(MAX_QUEUED_BYTES));

/// Log lines dropped so far: the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Bytes of log lines queued now.
static QUEUED: AtomicUsize = AtomicUsize::new(0);

/// How many log lines were dropped since sigd started.
pub fn dropped_lines() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// The queue [`defer`] sends to, once [`init`] made it.
static DEFERRED: OnceLock<mpsc::Sender<Message>> = OnceLock::new();

/// Log in `format`, what `RUST_LOG` lets through (else `default_filter`),
/// queued for the [`LogWriter`], which writes nothing until it is started.
pub fn init(format: LogFormat, default_filter: &str) -> LogWriter {
    let filter = filter(std::env::var("RUST_LOG").ok().as_deref(), default_filter);
    let (queue, lines) = mpsc::channel();
    let _ = DEFERRED.set(queue.clone());
    let writer = LogWriter {
        queue: queue.clone(),
        lines: Some(lines),
        started: false,
    };
    // The builder lets nothing below `info` through on its own: `filter`
    // says what does.
    let logs = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(Queue(queue));
    JSON.store(format == LogFormat::Json, Ordering::Relaxed);
    match (format, stderr_is_journal()) {
        (LogFormat::Text, false) => {
            let logs = logs.with_timer(Timestamps);
            let coloured = std::io::stderr().is_terminal();
            COLOURED.store(coloured, Ordering::Relaxed);
            let logs = logs.with_ansi(coloured);
            logs.fmt_fields(TextFields).finish().with(filter).init()
        }
        (LogFormat::Json, false) => {
            let logs = logs.fmt_fields(JsonFields::new()).event_format(JsonLines);
            logs.finish().with(filter).init()
        }
        (LogFormat::Text, true) => {
            let lines = format::format().without_time().with_ansi(false);
            logs.fmt_fields(TextFields)
                .event_format(Prioritized(lines))
                .finish()
                .with(filter)
                .init()
        }
        (LogFormat::Json, true) => {
            let logs = logs.fmt_fields(JsonFields::new());
            let logs = logs.event_format(Prioritized(JsonLines));
            logs.finish().with(filter).init()
        }
    }
    writer
}

/// What `RUST_LOG` (`LEVEL` and `TARGET=LEVEL` directives, comma
/// separated: `warn,sigd::audit=info`) lets through; `default` when it is
/// unset or cannot be read.
fn filter(rust_log: Option<&str>, default: &str) -> Targets {
    rust_log
        .and_then(|directives| directives.parse().ok())
        .or_else(|| default.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO))
}

/// What the writer thread is sent: a line, an event to log there, or
/// "write all before this and say so".
enum Message {
    /// A line, and the share of the queue it takes until written.
    Line(Vec<u8>, Share),
    Deferred(Deferred),
    Flush(mpsc::Sender<()>),
}

/// An event to log on the writer thread: `log` logs it, as if at `at`
/// and in `span`.
struct Deferred {
    spent: Spent,
    /// Where `spent` goes once logged: the graveyard of the thread that
    /// deferred it, if it has one ([`runtime`]).
    back: Option<Arc<Graveyard>>,
}

/// What a deferred event holds, all of it allocated where it was deferred.
struct Spent {
    /// What it counts for in the queue until written: about its line's bytes.
    size: usize,
    at: SystemTime,
    span: tracing::Span,
    log: Box<dyn Fn() + Send>,
    /// The caller's share of the queue it takes, given back when freed.
    _share: Share,
}

/// The async runtime, its worker threads freeing the events they
/// deferred, once logged: at their next [`defer`], and whenever they park.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_start(|| GRAVEYARD.set(Some(Arc::default())))
        .on_thread_park(|| free_spent(usize::MAX))
        .build()
}

/// Free the events this thread deferred that have been logged, `most` of
/// them at most.
fn free_spent(most: usize) {
    drop(GRAVEYARD.with_borrow(|graveyard| graveyard.as_ref().map(|g| g.take(most))));
}

/// The most logged events a request frees ([`defer`]): what its thread
/// left for longer (its graveyard filled while it was parked) costs no one
/// request more than that.
const FREED_PER_DEFER: usize = 64;

/// The events one thread deferred, logged, waiting for it to free them.
#[derive(Default)]
struct Graveyard(Mutex<Buried>);

#[derive(Default)]
struct Buried {
    events: Vec<Spent>,
    /// What `events` counted for in the queue.
    bytes: usize,
    /// How many times its thread has freed from it.
    visits: u64,
}

/// The most a graveyard holds (as its events counted in the queue): past
/// that, the writer thread frees them itself.
const GRAVEYARD_BYTES: usize = 1 << 20;

impl Graveyard {
    /// Leave `spent` here, or hand it back if the graveyard is full.
    fn bury(&self, spent: Spent) -> Option<Spent> {
        let mut buried = self.lock();
        if buried.bytes + spent.size > GRAVEYARD_BYTES {
            return Some(spent);
        }
        buried.bytes += spent.size;
        buried.events.push(spent);
        None
    }

    /// The oldest `most` events it holds, for its thread to free.
    fn take(&self, most: usize) -> Vec<Spent> {
        let mut buried = self.lock();
        buried.visits += 1;
        let most = most.min(buried.events.len());
        let taken: Vec<Spent> = buried.events.drain(..most).collect();
        buried.bytes -= taken.iter().map(|spent| spent.size).sum::<usize>();
        taken
    }

    /// Everything it holds, for the writer thread to free, if `visits`
    /// (as the writer last saw them, updated here) says its thread has
    /// not been back since; all of it, whatever the visits, if `always`.
    fn take_unvisited(&self, visits: &mut u64, always: bool) -> Vec<Spent> {
        let mut buried = self.lock();
        let unvisited = buried.visits == *visits;
        *visits = buried.visits;
        if !(always || unvisited) {
            return Vec::new();
        }
        buried.bytes = 0;
        buried.events.drain(..).collect()
    }

    fn lock(&self) -> MutexGuard<'_, Buried> {
        (self.0.lock()).unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Have `log`, which logs one event of about `size` bytes, run on the
/// writer thread, in the current span, its line timed now and written in
/// its place among the lines queued: formatting is most of what an audit
/// event costs, and there, many events in a row, it costs less than in a
/// request (BENCHMARKS.md, the tenth round). Dropped, and counted, as a
/// line is when the queue is full (as far as its `room` goes) or no writer
/// thread started; run here when no queue was made ([`init`]).
pub fn defer(size: usize, room: Room, log: impl Fn() + Send + 'static) {
    let Some(queue) = DEFERRED.get() else {
        return log();
    };
    free_spent(FREED_PER_DEFER);
    let Some(share) = make_room(size, &room) else {
        return;
    };
    let deferred = Deferred {
        spent: Spent {
            size,
            at: SystemTime::now(),
            span: tracing::Span::current(),
            log: Box::new(log),
            _share: share,
        },
        back: GRAVEYARD.with_borrow(|graveyard| graveyard.clone()),
    };
    if queue.send(Message::Deferred(deferred)).is_err() {
        // No writer thread (it could not start): dropped, as lines are then.
        QUEUED.fetch_sub(size, Ordering::Relaxed);
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Count `size` more bytes queued, unless that is past what `room` may
/// fill, or past the share of them the caller held to shares holds
/// ([`Room::Share`]): then count a line dropped, and `None`. The share
/// taken (nothing, but for such a caller's), to be held until the line is
/// written.
fn make_room(size: usize, room: &Room) -> Option<Share> {
    let holder = match room {
        Room::Share(holder) => holder,
        Room::All | Room::Half => &Holder::Trusted,
    };
    let Ok(share) = SHARES.take_many(holder, size) else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return None;
    };
    if QUEUED.fetch_add(size, Ordering::Relaxed) + size > room.limit() {
        QUEUED.fetch_sub(size, Ordering::Relaxed);
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    Some(share)
}

tokio::task_local! {
    /// Whose request (or escalation) a task runs: what it logs is charged
    /// to that caller's share of the queue ([`charged_to`]).
    static CHARGED: Holder;
}

/// Run `future` for `holder`: every line it logs (a refused escalation's
/// warning, a policy's output, a signal that failed) may fill only that
/// caller's share of the queue ([`Room`]) if it is held to shares, as its
/// audit events may. So a caller cannot crowd another's audit event out
/// of the log with lines it makes sigd write either.
pub fn charged_to<F: Future>(holder: Holder, future: F) -> impl Future<Output = F::Output> {
    CHARGED.scope(holder, future)
}

/// How much of the queue a line (not an audit event) logged here may fill:
/// its caller's share, if a caller held to shares made sigd log it
/// ([`charged_to`]), else half.
fn room_for_a_line() -> Room {
    match CHARGED.try_with(Holder::clone) {
        Ok(Holder::Trusted) | Err(_) => Room::Half,
        Ok(holder) => Room::Share(holder),
    }
}

thread_local! {
    /// On the thread writing lines: the lines of the deferred event being
    /// logged there, written in its place rather than queued behind lines
    /// that came after it.
    static HERE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    /// While a deferred event is logged: when it happened.
    static HAPPENED: Cell<Option<SystemTime>> = const { Cell::new(None) };
    /// On a thread that frees what it deferred ([`runtime`]): where the
    /// writer thread leaves it once logged.
    static GRAVEYARD: RefCell<Option<Arc<Graveyard>>> = const { RefCell::new(None) };
}

/// Write `message` into `out`, noting in `round` who asked for a flush and
/// what goes back to where it was deferred: a line as it is, a deferred
/// event as it is logged here (its lines straight into `out`), timed when
/// it happened. Whether it wrote a line.
fn write_message(message: Message, out: &mut Vec<u8>, round: &mut Round) -> bool {
    match message {
        Message::Line(line, _share) => {
            QUEUED.fetch_sub(line.len(), Ordering::Relaxed);
            out.extend_from_slice(&line);
            true
        }
        Message::Deferred(Deferred { spent, back }) => {
            QUEUED.fetch_sub(spent.size, Ordering::Relaxed);
            let start = out.len();
            HAPPENED.set(Some(spent.at));
            HERE.set(Some(std::mem::take(out)));
            // A panic in one event's formatting costs that event (counted
            // as dropped), not the writer thread and every line after it.
            let logged = std::panic::catch_unwind(AssertUnwindSafe(|| {
                spent.span.in_scope(|| (spent.log)())
            }));
            HAPPENED.set(None);
            *out = HERE.take().unwrap_or_default();
            if let Some(back) = back {
                round.spent.push((back, spent));
            }
            if logged.is_err() {
                out.truncate(start);
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            out.len() > start
        }
        Message::Flush(done) => {
            round.flushed.push(done);
            false
        }
    }
}

/// What one round of the writer thread leaves to do once its lines are
/// written: say so to who asked for a flush, and leave deferred events
/// for the threads that free them.
#[derive(Default)]
struct Round {
    flushed: Vec<mpsc::Sender<()>>,
    spent: Vec<(Arc<Graveyard>, Spent)>,
}

/// The graveyards the writer thread has left events in, each with its
/// thread's visits as last seen.
type Graveyards = Vec<(Arc<Graveyard>, u64)>;

impl Round {
    /// Leave the events logged so far in their threads' graveyards (those
    /// full: freed here), noting each graveyard in `graveyards`.
    fn bury(&mut self, graveyards: &mut Graveyards) {
        for (graveyard, spent) in self.spent.drain(..) {
            if !graveyards
                .iter()
                .any(|(known, _)| Arc::ptr_eq(known, &graveyard))
            {
                graveyards.push((graveyard.clone(), u64::MAX));
            }
            drop(graveyard.bury(spent));
        }
    }
}

/// Free what the graveyards hold whose threads have freed nothing since
/// the last look (they are idle: no request is allocating there), or
/// what every graveyard holds if `all` (no line is queued: none is
/// allocating anywhere); forget those whose threads are gone.
fn free_graveyards(graveyards: &mut Graveyards, all: bool) {
    for (graveyard, visits) in graveyards.iter_mut() {
        drop(graveyard.take_unvisited(visits, all));
    }
    graveyards.retain(|(graveyard, _)| Arc::strong_count(graveyard) > 1);
}

/// The most bytes of lines the writer thread gathers for one write(2).
const BATCH_BYTES: usize = 64 << 10;

/// Lines gathered for one write(2), and where each ends: a write that
/// fails (stderr a pipe whose reader is gone, say) counts the lines it did
/// not write whole as dropped.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// The end of each message's lines in `bytes`.
    ends: Vec<usize>,
    /// The last write of lines failed; if it cut one short, the next batch
    /// starts on a line of its own.
    failing: bool,
    cut: bool,
}

impl Batch {
    /// Gather what `message` writes ([`write_message`]).
    fn add(&mut self, message: Message, round: &mut Round) {
        if self.bytes.is_empty() && self.cut {
            self.bytes.push(b'\n');
            self.cut = false;
        }
        if write_message(message, &mut self.bytes, round) {
            self.ends.push(self.bytes.len());
        }
    }

    /// [`write_to`](Batch::write_to) `out`, the lines lost counted dropped.
    fn write_counted(&mut self, out: &mut (impl Write + AsFd)) {
        let lost = self.write_to(out);
        DROPPED.fetch_add(lost as u64, Ordering::Relaxed);
    }

    /// Write the lines gathered to `out`, waiting while it is full (a
    /// non-blocking stderr), and start again: how many lines a failed
    /// write did not write whole (0: all written, or nothing to write).
    fn write_to(&mut self, out: &mut (impl Write + AsFd)) -> usize {
        if self.bytes.is_empty() {
            return 0;
        }
        let mut written = 0;
        while written < self.bytes.len() {
            match out.write(&self.bytes[written..]) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    if !writable(out.as_fd()) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let lost = self.ends.iter().filter(|end| **end > written).count();
        self.failing = written < self.bytes.len();
        self.cut = self.failing && written > 0 && self.bytes[written - 1] != b'\n';
        self.bytes.clear();
        self.ends.clear();
        lost
    }
}

/// Wait until `fd` can be written to (or has failed, which the write then
/// says); false if even that cannot be waited for.
fn writable(fd: BorrowedFd<'_>) -> bool {
    use nix::poll::{PollFlags, PollTimeout};
    crate::poll::ready(fd, PollFlags::POLLOUT, PollTimeout::NONE).is_ok()
}

/// The queue events are formatted into (a `MakeWriter`).
struct Queue(mpsc::Sender<Message>);

impl<'a> MakeWriter<'a> for Queue {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0, Vec::new(), room_for_a_line())
    }

    /// A line may fill half the queue, or the share of the caller it was
    /// logged for ([`charged_to`]); an audit event written as a line (an
    /// escalation cancelled at shutdown) all of it.
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Line<'a> {
        let room = match meta.target() == crate::audit::TARGET {
            true => Room::All,
            false => room_for_a_line(),
        };
        Line(&self.0, Vec::new(), room)
    }
}

/// One event's line, queued when dropped (tracing formats a whole event,
/// then writes it at once), and how much of the queue it may fill.
struct Line<'a>(&'a mpsc::Sender<Message>, Vec<u8>, Room);

impl std::io::Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // A deferred event's, logged on the writer thread: written there,
        // straight into the lines being gathered.
        let here = HERE.with_borrow_mut(|here| {
            (here.as_mut().map(|lines| lines.extend_from_slice(bytes))).is_some()
        });
        if !here {
            self.1.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        let line = one_line(std::mem::take(&mut self.1));
        let size = line.len();
        if line.is_empty() {
            return;
        }
        let Some(share) = make_room(size, &self.2) else {
            return;
        };
        if self.0.send(Message::Line(line, share)).is_err() {
            QUEUED.fetch_sub(size, Ordering::Relaxed);
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The most bytes of a line's text, but an audit event's (whose parts sigd
/// bounds and escapes itself): far more than sigd's own lines say.
const MAX_LINE_BYTES: usize = 16 << 10;

/// Whether lines carry terminal colours (stderr is a terminal): their
/// escape characters are then tracing's own, and kept.
static COLOURED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One event's `line` (ending in its newline) as one line: what it carries
/// may be anyone's words (a policy's trap, the sentence its `configure`
/// rejected settings with), which must never end the line and start one
/// of their own (a forged audit event, say), nor move a terminal's cursor.
/// So a text line is [`contained`] (colours kept, when lines have them).
fn one_line(line: Vec<u8>) -> Vec<u8> {
    if json() {
        return line;
    }
    let text = String::from_utf8_lossy(line.strip_suffix(b"\n").unwrap_or(&line));
    // Passed on as it is only if it was UTF-8 and holds nothing to contain.
    let rewritten = match contain(&text, COLOURED.load(Ordering::Relaxed), MAX_LINE_BYTES) {
        Cow::Borrowed(_) if matches!(text, Cow::Borrowed(_)) => None,
        contained => Some(format!("{contained}\n").into_bytes()),
    };
    rewritten.unwrap_or(line)
}

/// `text` on one line: its control characters (tabs aside) escaped
/// (`\n`, `\r`, `\u{1b}`), and cut past [`MAX_LINE_BYTES`], saying so.
/// Borrowed when it needs neither.
pub fn contained(text: &str) -> Cow<'_, str> {
    contain(text, false, MAX_LINE_BYTES)
}

/// [`contained`], cut past `max_bytes` instead.
pub fn contained_to(text: &str, max_bytes: usize) -> Cow<'_, str> {
    contain(text, false, max_bytes)
}

/// [`contained_to`], keeping escape characters (colours) if `coloured`.
fn contain(text: &str, coloured: bool, max_bytes: usize) -> Cow<'_, str> {
    let control = |c: char| c.is_control() && c != '\t' && !(coloured && c == '\x1b');
    if text.len() <= max_bytes && !text.contains(control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max_bytes) + 32);
    for (at, c) in text.char_indices() {
        if out.len() >= max_bytes {
            let _ = write!(out, "... ({} bytes more)", text.len() - at);
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if control(c) => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The writer of queued lines to stderr. [`start`](LogWriter::start) it once
/// the process may start threads (after `main` settles its capabilities);
/// dropped, it writes what is still queued before returning.
pub struct LogWriter {
    queue: mpsc::Sender<Message>,
    /// Until started: the queue's receiving end.
    lines: Option<mpsc::Receiver<Message>>,
    started: bool,
}

impl LogWriter {
    /// Start writing on a thread of its own.
    pub fn start(&mut self) {
        let Some(lines) = self.lines.take() else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("sigd-log".into())
            .spawn(move || write_lines(lines));
        match spawned {
            Ok(_) => self.started = true,
            Err(error) => eprintln!("sigd: cannot start the log writer: {error}"),
        }
    }
}

impl Drop for LogWriter {
    /// Write what is queued: through the thread (waiting at most a second),
    /// or here if it never started.
    fn drop(&mut self) {
        if let Some(lines) = self.lines.take() {
            let mut batch = Batch::default();
            for message in lines.try_iter() {
                batch.add(message, &mut Round::default());
            }
            batch.write_counted(&mut std::io::stderr());
            return;
        }
        let (done, written) = mpsc::channel();
        if self.started && self.queue.send(Message::Flush(done)).is_ok() {
            let _ = written.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// How long the writer thread lets lines gather while they keep coming: a
/// thread woken for every line costs a request a futex wake-up and a
/// context switch; so it is woken by the first line of a burst only.
const GATHER: Duration = Duration::from_millis(5);

/// The writer thread: every line queued, as many per write(2) as gather
/// in [`GATHER`] while lines keep coming (blocked, without a timer, while
/// none do); then, if lines were dropped since, a warning: once stderr
/// takes lines again, if it failed (a warning of lines lost to a stderr
/// that fails would be lost, and counted, in turn). The deferred events
/// logged are left, after each write, for their threads to free; what a
/// thread idle for a round, or any when no line is queued, has not freed
/// is freed here.
fn write_lines(lines: mpsc::Receiver<Message>) {
    let mut stderr = std::io::stderr();
    let mut batch = Batch::default();
    let mut graveyards = Vec::new();
    let mut reported = 0;
    let mut next = lines.recv().ok();
    while let Some(first) = next.take() {
        let mut round = Round::default();
        for message in std::iter::once(first).chain(lines.try_iter()) {
            batch.add(message, &mut round);
            if batch.bytes.len() >= BATCH_BYTES {
                batch.write_counted(&mut stderr);
                round.bury(&mut graveyards);
            }
        }
        batch.write_counted(&mut stderr);
        round.bury(&mut graveyards);
        free_graveyards(&mut graveyards, false);
        for done in round.flushed {
            let _ = done.send(());
        }
        let dropped = dropped_lines();
        if !batch.failing && dropped > reported {
            tracing::warn!(
                dropped = dropped - reported,
                "log lines dropped: stderr did not keep up or could not be written \
                 (sigd_log_lines_dropped_total)"
            );
            reported = dropped;
        }
        std::thread::sleep(GATHER);
        next = match lines.try_recv() {
            Ok(message) => Some(message),
            Err(mpsc::TryRecvError::Empty) => {
                free_graveyards(&mut graveyards, true);
                lines.recv().ok()
            }
            Err(mpsc::TryRecvError::Disconnected) => None,
        };
    }
}

/// Whether stderr is the stream `$JOURNAL_STREAM` names (`DEVICE:INODE`):
/// set by systemd for a service whose output goes to the journal, and
/// inherited by whatever it starts, whose stderr may be elsewhere.
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var("JOURNAL_STREAM").ok() else {
        return false;
    };
    let Ok(stderr) = nix::sys::stat::fstat(std::io::stderr()) else {
        return false;
    };
    stream == format!("{}:{}", stderr.st_dev, stderr.st_ino)
}

/// Fields for people: tracing's own, but [`INLINE_FIELD`] (an audit
/// event's fields, written and escaped already) goes into the line as it
/// is, not as `audit=...`.
struct TextFields;

impl<'a> MakeVisitor<Writer<'a>> for TextFields {
    type Visitor = TextVisitor<'a>;

    fn make_visitor(&self, target: Writer<'a>) -> TextVisitor<'a> {
        TextVisitor(DefaultFields::new().make_visitor(target))
    }
}

/// [`TextFields`]' visitor: tracing's own, but for [`INLINE_FIELD`].
struct TextVisitor<'a>(DefaultVisitor<'a>);

impl Visit for TextVisitor<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            INLINE_FIELD => {
                let _ = write!(self.0.writer(), "{value:?}");
            }
            _ => self.0.record_debug(field, value),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.record_str(field, value)
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.record_error(field, value)
    }
}

impl VisitOutput<std::fmt::Result> for TextVisitor<'_> {
    fn finish(self) -> std::fmt::Result {
        self.0.finish()
    }
}

impl VisitFmt for TextVisitor<'_> {
    fn writer(&mut self) -> &mut dyn std::fmt::Write {
        self.0.writer()
    }
}

/// A log line's format, with the line's syslog priority before it.
struct Prioritized<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            Level::DEBUG | Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(context, writer, event)
    }
}

/// Timestamps as tracing's `SystemTime` writes them (RFC 3339 in UTC, to
/// the microsecond: `2026-12-03T07:35:08.123456Z`), the date and time up to
/// the second written once a second on each thread, not once a line (it
/// was a tenth of what an audit event cost to write).
struct Timestamps;

impl FormatTime for Timestamps {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        thread_local! {
            /// The second last written on this thread, and its text.
            static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
        }
        // A deferred event's time is when it happened, not when written.
        let now = (HAPPENED.get().unwrap_or_else(SystemTime::now))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        SECOND.with_borrow_mut(|(second, text)| {
            if *second != now.as_secs() {
                *second = now.as_secs();
                *text = utc_to_the_second(*second);
            }
            write!(w, "{text}.{:06}Z", now.subsec_micros())
        })
    }
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS` in UTC (the days to a
/// civil date by Howard Hinnant's `civil_from_days`): sigd's one writer of
/// dates, for log lines and for `/healthz`.
pub fn utc_to_the_second(secs: u64) -> String {
    let (days, time) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let (era, day_of_era) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_based = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * march_based + 2) / 5 + 1;
    let month = if march_based < 10 {
        march_based + 3
    } else {
        march_based - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (hour, minute, second) = (time / 3600, time / 60 % 60, time % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
}

/// One JSON object per event: `timestamp`, `level`, the event's fields
/// (`message` among them), `target`, and `span` (the current span's name
/// and fields, which `JsonFields` formatted as a JSON object).
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::with_capacity(512);
        line.push_str("{\"timestamp\":\"");
        Timestamps.format_time(&mut Writer::new(&mut line))?;
        let metadata = event.metadata();
        write!(line, "\",\"level\":\"{}\"", metadata.level())?;
        let raw_json = metadata.target() == crate::audit::TARGET;
        event.record(&mut JsonFieldsOf(&mut line, raw_json));
        line.push_str(",\"target\":");
        push_json_string(&mut line, metadata.target());
        if let Some(span) = context.lookup_current() {
            line.push_str(",\"span\":{\"name\":");
            push_json_string(&mut line, span.name());
            let extensions = span.extensions();
            let fields = extensions
                .get::<FormattedFields<N>>()
                .map(|fields| fields.fields.as_str())
                .unwrap_or_default();
            // `{"a":1}` -> `,"a":1`: the span's own fields after its name.
            if let Some(inner) = fields.strip_prefix('{').and_then(|f| f.strip_suffix('}'))
                && !inner.is_empty()
            {
                line.push(',');
                line.push_str(inner);
            }
            line.push('}');
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// An event's fields as `,"name":value` members of a JSON object; with
/// `true`, an audit event's: its fields are one JSON object already.
struct JsonFieldsOf<'a>(&'a mut String, bool);

impl JsonFieldsOf<'_> {
    fn name(&mut self, field: &Field) {
        self.0.push(',');
        push_json_string(self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for JsonFieldsOf<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // An audit event's fields are serde_json's object already (audit.rs
        // gives it as `display`), written straight into the line:
        // `{"a":1,"b":2}` becomes the members `,"a":1,"b":2`.
        if self.1 && field.name() == INLINE_FIELD {
            let start = self.0.len();
            let _ = write!(self.0, "{value:?}");
            if self.0[start..].starts_with('{') && self.0.ends_with('}') {
                self.0.replace_range(start..=start, ",");
                self.0.pop();
                if self.0.len() == start + 1 {
                    self.0.pop(); // it was `{}`
                }
            }
            return;
        }
        self.name(field);
        push_json_string(self.0, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.name(field);
        push_json_string(self.0, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.name(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.name(field);
        match serde_json::Number::from_f64(value) {
            Some(number) => self.0.push_str(&number.to_string()),
            None => push_json_string(self.0, &value.to_string()),
        }
    }
}

/// `text` as a JSON string.
fn push_json_string(line: &mut String, text: &str) {
    // Serializing a string into a String cannot fail.
    line.push_str(&serde_json::to_string(text).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A buffer to log into.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Timestamps read as tracing's own: dates around leap days and
    /// centuries, and now, to the second, against `SystemTime`'s text.
    #[test]
    fn timestamps_are_tracings_own() {
        use tracing_subscriber::fmt::time::SystemTime;
        for (secs, text) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_399, "2000-02-28T23:59:59"),
            (951_782_400, "2000-02-29T00:00:00"),
            (951_868_800, "2000-03-01T00:00:00"),
            (1_709_164_800, "2024-02-29T00:00:00"),
            (1_798_761_599, "2026-12-31T23:59:59"),
            (4_107_542_400, "2100-03-01T00:00:00"),
        ] {
            assert_eq!(utc_to_the_second(secs), text, "{secs}");
        }
        let format = |timer: &dyn FormatTime| {
            let mut text = String::new();
            timer.format_time(&mut Writer::new(&mut text)).unwrap();
            text
        };
        // Two clocks read in turn agree but across a second's turn.
        let agree = (0..3).any(|_| {
            let (ours, theirs) = (format(&Timestamps), format(&SystemTime));
            assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
            assert!(ours.ends_with('Z'), "{ours}");
            ours[..20] == theirs[..20]
        });
        assert!(agree);
    }

    /// A deferred event is logged on the thread that writes lines, timed
    /// when it happened, in the span it happened in, and written in its
    /// place, not queued behind later lines; one that panics is counted
    /// as dropped and the writer goes on. An event logged as usual is
    /// queued, timed when logged.
    #[test]
    fn deferred_events_keep_their_time_span_and_place() {
        let (queue, lines) = mpsc::channel();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(Queue(queue))
            .with_timer(Timestamps)
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let deferred = |log: Box<dyn Fn() + Send>| {
                let share = make_room(64, &Room::All).unwrap();
                let span = tracing::info_span!("request", id = 7);
                Message::Deferred(Deferred {
                    spent: Spent {
                        size: 64,
                        at: std::time::UNIX_EPOCH + Duration::from_micros(951_868_801_000_002),
                        span,
                        log,
                        _share: share,
                    },
                    back: None,
                })
            };
            let mut out = b"before\n".to_vec();
            let message = deferred(Box::new(|| tracing::info!("deferred")));
            write_message(message, &mut out, &mut Round::default());
            let line = String::from_utf8(out).unwrap();
            assert_eq!(
                line,
                "before\n2000-03-01T00:00:01.000002Z  INFO request{id=7}: sigd::logs::tests: deferred\n"
            );
            assert!(lines.try_recv().is_err(), "queued behind later lines");
            let dropped = dropped_lines();
            let mut out = b"before\n".to_vec();
            let message = deferred(Box::new(|| {
                tracing::info!("half an event");
                panic!("a formatting bug")
            }));
            write_message(message, &mut out, &mut Round::default());
            assert_eq!(out, b"before\n", "the failed event's lines are taken out");
            assert_eq!(dropped_lines(), dropped + 1);
            tracing::info!("logged as usual");
            let Ok(Message::Line(line, _)) = lines.try_recv() else {
                panic!("not queued");
            };
            assert!(!line.starts_with(b"2000-"), "{line:?}");
        });
    }

    /// A logged event of `size` (counted in the queue), deferred where it
    /// is allocated.
    fn deferred_holding(held: &Arc<()>, size: usize, back: Option<Arc<Graveyard>>) -> Message {
        let share = make_room(size, &Room::All).unwrap();
        let held = held.clone();
        Message::Deferred(Deferred {
            spent: Spent {
                size,
                at: SystemTime::now(),
                span: tracing::Span::none(),
                log: Box::new(move || {
                    let _ = &held;
                }),
                _share: share,
            },
            back,
        })
    }

    /// What a deferred event holds is left, once logged, for the thread
    /// that deferred it to free, [`GRAVEYARD_BYTES`] at most (an event
    /// past that is freed at once), a given number at a time; the writer
    /// thread frees what a thread left unvisited since its last look, or
    /// everything when told, and forgets a graveyard whose thread is gone.
    #[test]
    fn a_logged_event_is_left_for_its_thread_to_free() {
        let graveyard = Arc::new(Graveyard::default());
        let held = Arc::new(());
        let (mut round, mut graveyards) = (Round::default(), Vec::new());
        for _ in 0..5 {
            let event = deferred_holding(&held, GRAVEYARD_BYTES / 4, Some(graveyard.clone()));
            write_message(event, &mut Vec::new(), &mut round);
        }
        round.bury(&mut graveyards);
        assert_eq!(Arc::strong_count(&held), 1 + 4, "one past the bound kept");
        assert_eq!(graveyards.len(), 1);

        GRAVEYARD.set(Some(graveyard.clone()));
        free_spent(3);
        assert_eq!(Arc::strong_count(&held), 1 + 1, "its thread freed 3");
        free_graveyards(&mut graveyards, false);
        assert_eq!(Arc::strong_count(&held), 2, "kept at the first look");
        free_graveyards(&mut graveyards, false);
        assert_eq!(Arc::strong_count(&held), 1, "its thread was not back");
        GRAVEYARD.set(None);

        let event = deferred_holding(&held, 1, Some(graveyard.clone()));
        write_message(event, &mut Vec::new(), &mut round);
        round.bury(&mut graveyards);
        assert_eq!(Arc::strong_count(&held), 2);
        drop(graveyard); // its thread is gone
        free_graveyards(&mut graveyards, true);
        assert_eq!(Arc::strong_count(&held), 1, "the writer thread freed it");
        assert!(graveyards.is_empty());
    }

    /// The writer thread frees what a thread gone idle left in its
    /// graveyard while other lines keep coming, one a millisecond: a
    /// trickle of lines cannot make an idle thread keep it.
    #[test]
    fn the_writer_frees_what_an_idle_thread_left_under_a_trickle() {
        let (queue, lines) = mpsc::channel();
        std::thread::spawn(move || write_lines(lines));
        let held = Arc::new(());
        let graveyard = Arc::new(Graveyard::default());
        queue
            .send(deferred_holding(&held, 1, Some(graveyard.clone())))
            .unwrap();
        let freed = (0..1000).any(|_| {
            queue
                .send(Message::Line(
                    Vec::new(),
                    make_room(0, &Room::Half).unwrap(),
                ))
                .unwrap();
            std::thread::sleep(Duration::from_millis(1));
            Arc::strong_count(&held) == 1
        });
        assert!(freed, "an idle thread's graveyard kept it");
    }

    /// A worker thread of the runtime has a graveyard, and frees what it
    /// holds when it parks.
    #[test]
    fn the_runtimes_workers_free_their_graveyards_when_they_park() {
        let runtime = runtime().unwrap();
        let graveyard = runtime
            .block_on(runtime.spawn(async { GRAVEYARD.with_borrow(Clone::clone) }))
            .unwrap()
            .expect("a worker thread without a graveyard");
        let held = Arc::new(());
        let Message::Deferred(deferred) = deferred_holding(&held, 0, None) else {
            unreachable!()
        };
        assert!(graveyard.bury(deferred.spent).is_none());
        // Work for every worker, which then parks.
        let freed = (0..100).any(|_| {
            runtime.block_on(async {
                let busy = (0..4)
                    .map(|_| tokio::spawn(async { std::thread::sleep(Duration::from_millis(2)) }));
                for task in busy.collect::<Vec<_>>() {
                    task.await.unwrap();
                }
            });
            std::thread::sleep(Duration::from_millis(5));
            Arc::strong_count(&held) == 1
        });
        assert!(freed, "a parked worker kept what it deferred");
    }

    /// A line logged for a caller held to shares ([`charged_to`]), across
    /// its awaits, may fill only that caller's share of the queue, which it
    /// holds until written; one logged for root or the operator, or for no
    /// caller, half the queue, as before.
    #[tokio::test]
    async fn a_line_is_charged_to_the_caller_it_is_logged_for() {
        let tenant = Holder::Uid(4_000_000_001);
        assert_eq!(room_for_a_line(), Room::Half);
        let room = charged_to(tenant.clone(), async {
            tokio::task::yield_now().await;
            room_for_a_line()
        });
        assert_eq!(room.await, Room::Share(tenant.clone()));
        let trusted = charged_to(Holder::Trusted, async { room_for_a_line() });
        assert_eq!(trusted.await, Room::Half);

        let share = make_room(100, &Room::Share(tenant.clone())).unwrap();
        assert_eq!(SHARES.held(&tenant), 100);
        let too_much = MAX_QUEUED_BYTES / crate::shares::SHARE;
        assert!(make_room(too_much, &Room::Share(tenant.clone())).is_none());
        let mut out = Vec::new();
        write_message(
            Message::Line(vec![b'x'; 100], share),
            &mut out,
            &mut Round::default(),
        );
        assert_eq!(SHARES.held(&tenant), 0, "written, and still held");
    }

    /// What a line carries stays on that line: a newline, a carriage
    /// return or a terminal escape in its text (anyone's words: a policy's
    /// trap, its settings' error) is escaped, not written; a line too long
    /// is cut and says by how much; a clean line is passed on as it is.
    #[test]
    fn a_line_carries_no_line_of_its_own() {
        let forged = "WARN policy failed: x\nINFO sigd::audit: signal request record={}\r\x1b[2K\n";
        let line = String::from_utf8(one_line(forged.as_bytes().to_vec())).unwrap();
        assert_eq!(
            line,
            "WARN policy failed: x\\nINFO sigd::audit: signal request record={}\\r\\u{1b}[2K\n"
        );
        assert_eq!(line.lines().count(), 1);
        let clean = b"INFO sigd::serve: listening\ton 127.0.0.1:9000\n".to_vec();
        assert_eq!(one_line(clean.clone()), clean);
        let long = format!("{}\n", "y".repeat(MAX_LINE_BYTES + 100));
        let cut = String::from_utf8(one_line(long.into_bytes())).unwrap();
        assert!(
            cut.ends_with("... (100 bytes more)\n"),
            "{}",
            &cut[cut.len() - 40..]
        );
        assert_eq!(cut.lines().count(), 1);
    }

    /// A batch of lines written to a non-blocking pipe that fills waits for
    /// room rather than losing lines; one whose reader goes away halfway
    /// counts as lost only the lines it did not write whole, and the next
    /// batch starts on a line of its own (not glued to the one cut short).
    #[test]
    fn a_batch_loses_only_what_stderr_did_not_take() {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        use std::io::Read;
        let lines = |batch: &mut Batch| {
            for i in 0..100 {
                let line = format!("line {i:03} {}\n", "x".repeat(90)).into_bytes();
                let share = make_room(line.len(), &Room::All).unwrap();
                batch.add(Message::Line(line, share), &mut Round::default());
            }
        };
        let pipe = || {
            let (reader, writer) = nix::unistd::pipe().unwrap();
            fcntl(&writer, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
            fcntl(&writer, FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
            (std::fs::File::from(reader), std::fs::File::from(writer))
        };

        let (mut reader, mut writer) = pipe();
        let read = std::thread::spawn(move || {
            let mut all = String::new();
            reader.read_to_string(&mut all).unwrap();
            all
        });
        let mut batch = Batch::default();
        lines(&mut batch);
        assert_eq!(batch.write_to(&mut writer), 0);
        assert!(!batch.failing);
        drop(writer);
        let all = read.join().unwrap();
        assert_eq!(all.lines().count(), 100);
        assert!(all.lines().all(|line| line.len() == 99), "{all}");

        let (reader, mut writer) = pipe();
        let gone = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(reader);
        });
        lines(&mut batch);
        // 4096 bytes of lines of 100 went in: 40 whole, the 41st cut.
        assert_eq!(batch.write_to(&mut writer), 60);
        assert!(batch.failing);
        gone.join().unwrap();
        lines(&mut batch);
        assert!(batch.bytes.starts_with(b"\nline 000"));
        batch.bytes.clear();
        batch.ends.clear();
    }

    /// In lines for people, an audit event's fields (written already) go
    /// into the line as they are, and other fields as tracing writes them.
    #[test]
    fn inline_fields_are_written_as_they_are() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .fmt_fields(TextFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "sigd::audit", audit = %" a=\"1\" b=2", c = 3, "signal request");
        });
        let line = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        assert_eq!(line, " INFO sigd::audit: signal request a=\"1\" b=2 c=3\n");
    }
}
