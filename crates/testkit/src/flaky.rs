//! A bad connection between a browser and the app: a TCP proxy on a loopback port that passes
//! bytes through, refuses connections, or delivers requests and loses their answers, as the
//! test says. What the browser sees then is a real network failure, not a mocked one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with the connections it accepts from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Bytes go both ways untouched.
    Up,
    /// A connection is closed as soon as it is accepted: nothing reaches the app.
    Refused,
    /// The request reaches the app, and its answer is lost: the connection is closed as soon as
    /// the app starts answering (the app did the work; the client never hears of it).
    AnswersLost,
    /// A gateway in front of an app that is down: every request is answered 503, none reaches
    /// the app.
    Unavailable,
}

/// The proxy: `address` is where the browser goes instead of the app.
#[derive(Debug)]
pub struct FlakyProxy {
    pub address: String,
    line: Arc<Mutex<Line>>,
    lost: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    /// Bumped to cut every connection open at that moment.
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FlakyProxy {
    /// Starts a proxy in front of `upstream` (`http://host:port` or `host:port`), the line up.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = format!("http://{}", listener.local_addr().unwrap());
        let line = Arc::new(Mutex::new(Line::Up));
        let lost = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (cut, cuts) = watch::channel(0u64);
        let task = tokio::spawn({
            let (line, lost, refused) = (line.clone(), lost.clone(), refused.clone());
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let now = *line.lock().unwrap();
                    if now == Line::Refused {
                        refused.fetch_add(1, Ordering::SeqCst);
                        drop(client);
                        continue;
                    }
                    if now == Line::Unavailable {
                        tokio::spawn(unavailable(client));
                        continue;
                    }
                    let upstream = upstream.clone();
                    let lost = lost.clone();
                    let mut cuts = cuts.clone();
                    cuts.mark_unchanged();
                    tokio::spawn(async move {
                        let Ok(server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = relay(client, server, now == Line::AnswersLost, &lost) => {}
                            _ = cuts.changed() => {}
                        }
                    });
                }
            }
        });
        Self {
            address,
            line,
            lost,
            refused,
            cut,
            task,
        }
    }

    /// Sets what happens to the connections accepted from now on, and cuts those open now (a
    /// browser keeps connections alive: without the cut it would go on using one).
    pub fn set(&self, line: Line) {
        *self.line.lock().unwrap() = line;
        self.cut.send_modify(|n| *n += 1);
    }

    /// How many answers the app gave that the client never got.
    pub fn answers_lost(&self) -> usize {
        self.lost.load(Ordering::SeqCst)
    }

    /// How many connections were refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Reads a request's head and answers 503 (a gateway's answer), then hangs up.
async fn unavailable(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    // The body too: closing with unread bytes would reset the connection, not answer it.
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let length = String::from_utf8_lossy(&head[..end])
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = head.len() - end;
    while body < length {
        match client.read(&mut buf).await {
            Ok(n) if n > 0 => body += n,
            _ => return,
        }
    }
    let _ = client
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nconnection: close\r\n\r\nUnavailable\n",
        )
        .await;
    let _ = client.shutdown().await;
}

async fn relay(client: TcpStream, server: TcpStream, lose_answers: bool, lost: &AtomicUsize) {
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_in, &mut server_out).await;
        let _ = server_out.shutdown().await;
    };
    let downstream = async {
        if lose_answers {
            // The first bytes of the answer: the request was read and done; drop them and hang up.
            let mut first = [0u8; 1];
            if matches!(server_in.read(&mut first).await, Ok(n) if n > 0) {
                lost.fetch_add(1, Ordering::SeqCst);
            }
            return;
        }
        let _ = tokio::io::copy(&mut server_in, &mut client_out).await;
        let _ = client_out.shutdown().await;
    };
    // Whichever side ends first ends the connection (dropping both halves closes it).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}
