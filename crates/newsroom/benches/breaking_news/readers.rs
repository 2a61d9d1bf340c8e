//! Live readers: raw HTTP/1.1 connections reading server-sent events, with the small parser for
//! chunked transfer coding and events that notes when each event's `id:` arrived, and its check.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use newsroom_testkit::report::secs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::common::*;

use crate::CONNECTING;

/// When each event id arrived on one stream.
#[derive(Debug, Default)]
pub(crate) struct ReaderLog {
    pub(crate) arrivals: Mutex<Vec<(i64, Instant)>>,
}

/// What a group of readers saw, together.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Answered 200 and are reading.
    open: AtomicUsize,
    /// Never got a 200 (connection refused, a 429/503 answer, …).
    refused: AtomicUsize,
    /// Ended after opening, while the bench still wanted them open.
    ended: AtomicUsize,
    /// Events with an id received by the group.
    pub(crate) events: AtomicUsize,
    /// Body bytes received by the group (chunk framing included).
    pub(crate) bytes: AtomicUsize,
    /// Why readers were refused or ended, and events of names no change has.
    reasons: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    pub(crate) fn note(&self, reason: String) {
        *self
            .reasons
            .lock()
            .expect("reasons lock")
            .entry(reason)
            .or_default() += 1;
    }
}

/// The change names a story's stream sends today (`changes_since`).
const CHANGE_NAMES: [&str; 6] = [
    "added",
    "corrected",
    "retracted",
    "story_revised",
    "story_closed",
    "story_reopened",
];

/// Decodes the body of an SSE answer as it arrives: the chunked transfer coding (when the answer
/// uses it), then the event stream's lines.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    chunked: bool,
    /// Undecoded chunked framing.
    raw: Vec<u8>,
    chunk: ChunkState,
    /// Event-stream bytes not yet split into lines.
    text: Vec<u8>,
    /// The event being read: its id and name.
    pub(crate) id: Option<i64>,
    event: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last chunk arrived: the server ended the stream.
    Done,
}

/// One complete event of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) id: Option<i64>,
    event: Option<String>,
}

impl SseDecoder {
    pub(crate) fn new(chunked: bool) -> Self {
        Self {
            chunked,
            ..Self::default()
        }
    }

    /// Feeds bytes of the body; the events completed by them. An error is a framing the decoder
    /// cannot follow.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, String> {
        if self.chunked {
            self.raw.extend_from_slice(bytes);
            self.unchunk()?;
        } else {
            self.text.extend_from_slice(bytes);
        }
        Ok(self.lines())
    }

    fn done(&self) -> bool {
        self.chunk == ChunkState::Done
    }

    fn unchunk(&mut self) -> Result<(), String> {
        let mut at = 0;
        loop {
            match self.chunk {
                ChunkState::Size => {
                    let Some(end) = find(&self.raw[at..], b"\r\n") else {
                        break;
                    };
                    let line = std::str::from_utf8(&self.raw[at..at + end])
                        .map_err(|_| "a chunk size that is not text")?;
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(hex, 16)
                        .map_err(|_| format!("a bad chunk size {line:?}"))?;
                    at += end + 2;
                    self.chunk = if size == 0 {
                        ChunkState::Done
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let n = left.min(self.raw.len() - at);
                    if n == 0 {
                        break;
                    }
                    self.text.extend_from_slice(&self.raw[at..at + n]);
                    at += n;
                    self.chunk = if n == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n)
                    };
                }
                ChunkState::DataEnd => {
                    if self.raw.len() - at < 2 {
                        break;
                    }
                    if &self.raw[at..at + 2] != b"\r\n" {
                        return Err("no CRLF after a chunk".into());
                    }
                    at += 2;
                    self.chunk = ChunkState::Size;
                }
                ChunkState::Done => break,
            }
        }
        self.raw.drain(..at);
        Ok(())
    }

    /// Splits the complete lines off `text` and interprets them (the SSE parsing rules: a blank
    /// line ends an event, `:` starts a comment, one space after the field's colon is dropped).
    pub(crate) fn lines(&mut self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut at = 0;
        while let Some(end) = self.text[at..].iter().position(|b| *b == b'\n') {
            let mut line = &self.text[at..at + end];
            at += end + 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            if line.is_empty() {
                if self.id.is_some() || self.event.is_some() {
                    events.push(SseEvent {
                        id: self.id.take(),
                        event: self.event.take(),
                    });
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match line.iter().position(|b| *b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            let value = String::from_utf8_lossy(value);
            match field {
                b"id" => self.id = value.trim().parse::<i64>().ok(),
                b"event" => self.event = Some(value.into_owned()),
                _ => {}
            }
        }
        self.text.drain(..at);
        events
    }
}

pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The status and whether the body is chunked, from an answer's head (without the blank line).
fn parse_head(head: &[u8]) -> Result<(u16, bool), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| "an answer without a status line".to_owned())?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    Ok((status, chunked))
}

/// One reader: connects, asks for the stream, and notes every event id's arrival until the
/// server ends the stream or the task is aborted.
async fn read_stream(
    addr: SocketAddr,
    path: Arc<str>,
    log: Arc<ReaderLog>,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
) {
    let permit = gate.acquire_owned().await;
    let refuse = |why: String| {
        shared.refused.fetch_add(1, Ordering::Relaxed);
        shared.note(format!("refused: {why}"));
    };
    let mut conn = match TcpStream::connect(addr).await {
        Ok(c) => c,
        Err(e) => return refuse(format!("connect: {}", e.kind())),
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    );
    if let Err(e) = conn.write_all(request.as_bytes()).await {
        return refuse(format!("write: {}", e.kind()));
    }
    let mut buf = [0u8; 4096];
    let mut head = Vec::new();
    let body_start = loop {
        match conn.read(&mut buf).await {
            Ok(0) => return refuse("closed before answering".into()),
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) => return refuse(format!("read: {}", e.kind())),
        }
        if let Some(end) = find(&head, b"\r\n\r\n") {
            break end;
        }
        if head.len() > 64 * 1024 {
            return refuse("an answer head over 64 KiB".into());
        }
    };
    let (status, chunked) = match parse_head(&head[..body_start]) {
        Ok(h) => h,
        Err(e) => return refuse(e),
    };
    if status != 200 {
        return refuse(format!("status {status}"));
    }
    shared.open.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut decoder = SseDecoder::new(chunked);
    let mut pending = head.split_off(body_start + 4);
    drop(head);
    let end = loop {
        let at = Instant::now();
        let events = match decoder.feed(&pending) {
            Ok(e) => e,
            Err(e) => break format!("ended: {e}"),
        };
        pending.clear();
        for e in events {
            if let Some(name) = &e.event {
                if !CHANGE_NAMES.contains(&name.as_str()) {
                    shared.note(format!("event `{name}`"));
                }
            }
            if let Some(id) = e.id {
                log.arrivals.lock().expect("arrivals lock").push((id, at));
                shared.events.fetch_add(1, Ordering::Relaxed);
            }
        }
        if decoder.done() {
            break "ended: the server ended the stream".into();
        }
        match conn.read(&mut buf).await {
            Ok(0) => break "ended: the server closed the connection".into(),
            Ok(n) => {
                shared.bytes.fetch_add(n, Ordering::Relaxed);
                pending.extend_from_slice(&buf[..n]);
            }
            Err(e) => break format!("ended: read: {}", e.kind()),
        }
    };
    shared.ended.fetch_add(1, Ordering::Relaxed);
    shared.note(end);
}

/// A group of readers of one story's stream.
pub(crate) struct Readers {
    pub(crate) tasks: Vec<tokio::task::JoinHandle<()>>,
    pub(crate) logs: Vec<Arc<ReaderLog>>,
    shared: Arc<Shared>,
    /// How long until every reader was answered (or gave up).
    opening: Duration,
    pub(crate) timed_out: bool,
}

impl Readers {
    pub(crate) async fn open(addr: SocketAddr, story: &str, n: usize, deadline: Instant) -> Self {
        let path: Arc<str> = Arc::from(format!("/v1/stories/{story}/stream"));
        let shared = Arc::new(Shared::default());
        let gate = Arc::new(Semaphore::new(CONNECTING));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        let mut logs = Vec::with_capacity(n);
        for _ in 0..n {
            let log = Arc::new(ReaderLog::default());
            logs.push(log.clone());
            tasks.push(tokio::spawn(read_stream(
                addr,
                path.clone(),
                log,
                shared.clone(),
                gate.clone(),
            )));
        }
        let answered =
            || shared.open.load(Ordering::Relaxed) + shared.refused.load(Ordering::Relaxed);
        let mut timed_out = false;
        while answered() < n {
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Self {
            tasks,
            logs,
            shared,
            opening: started.elapsed(),
            timed_out,
        }
    }

    pub(crate) fn open_now(&self) -> usize {
        self.shared.open.load(Ordering::Relaxed) - self.shared.ended.load(Ordering::Relaxed)
    }

    pub(crate) fn events(&self) -> usize {
        self.shared.events.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// (stream, position) pairs received, over `positions`.
    pub(crate) fn delivered(&self, positions: &[i64]) -> usize {
        self.logs
            .iter()
            .map(|log| {
                let arrivals = log.arrivals.lock().expect("arrivals lock");
                positions
                    .iter()
                    .filter(|p| arrivals.iter().any(|(id, _)| id == *p))
                    .count()
            })
            .sum()
    }

    pub(crate) fn describe(&self) -> String {
        let reasons = self.shared.reasons.lock().expect("reasons lock");
        let mut out = format!(
            "{} of {} streams answered 200 in {}{}; {} refused; {} ended while wanted",
            self.shared.open.load(Ordering::Relaxed),
            self.tasks.len(),
            secs(self.opening),
            if self.timed_out {
                " (**timed out** opening)"
            } else {
                ""
            },
            self.shared.refused.load(Ordering::Relaxed),
            self.shared.ended.load(Ordering::Relaxed),
        );
        if !reasons.is_empty() {
            let r: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} ×{v}")).collect();
            write!(out, " ({})", r.join(", ")).expect("writing to a String");
        }
        out
    }

    /// Closes every connection (the tasks are aborted, their sockets dropped).
    pub(crate) async fn close(self) -> String {
        let described = self.describe();
        for t in &self.tasks {
            t.abort();
        }
        for t in self.tasks {
            let _ = t.await;
        }
        described
    }
}

/// The stream parser on a known answer, split at every byte: `harness = false` benches run no
/// `#[test]`s, and a parser that missed ids would make every fan-out figure wrong, so the bench
/// checks it before it starts.
pub(crate) fn self_check() -> Res<()> {
    let chunk = |s: &str| format!("{:x}\r\n{s}\r\n", s.len());
    let body = [
        chunk("id: 41\nevent: added\ndata: {}\n"),
        chunk("\n: keep-alive\n\n"),
        chunk("id:42\r\nevent: added\r\ndata: x\r\n\r"),
        chunk("\n"),
        "0\r\n\r\n".to_owned(),
    ]
    .concat();
    let body = body.as_bytes();
    for split in 0..=body.len() {
        let mut d = SseDecoder::new(true);
        let mut events = d.feed(&body[..split])?;
        events.extend(d.feed(&body[split..])?);
        let ids: Vec<Option<i64>> = events.iter().map(|e| e.id).collect();
        if ids != [Some(41), Some(42)] || !d.done() {
            return Err(format!("the stream parser read {ids:?} when split at {split}").into());
        }
    }
    if SseDecoder::new(true).feed(b"zz\r\n").is_ok() {
        return Err("the stream parser took a bad chunk size".into());
    }
    let head = parse_head(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nTransfer-Encoding: chunked",
    )?;
    let refused = parse_head(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 10")?;
    if head != (200, true) || refused != (429, false) {
        return Err("the answer-head parser misread a head".into());
    }
    Ok(())
}
