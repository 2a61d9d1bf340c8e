//! Section 2's floor: a bare broadcast server, this bench's executable run again as a child
//! process.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use newsroom_testkit::process::{announce_port, spawn_self};
use newsroom_testkit::runtime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

use crate::readers::find;
use crate::server::Posted;

/// A child process of this bench (`BENCH_BARE_SSE` set, see [`bare_serve`]): the least a server
/// can do to hand one event to many open streams — a multi-thread tokio runtime like the
/// server's, a task per connection, one `write` of the chunk per stream — so that its CPU per
/// event per stream, measured the same way as the server's, is the machine's floor for it:
/// mostly the kernel's TCP work, which on loopback includes the receiving side's (the receiver's
/// stack runs in the sender's softirq and is charged to the sender).
pub(crate) struct Bare {
    child: tokio::process::Child,
    stdin: tokio::sync::Mutex<tokio::process::ChildStdin>,
    pub(crate) pid: u32,
    pub(crate) port: u16,
    /// Bytes of each frame's event (the chunk framing comes on top).
    size: usize,
    pub(crate) next: std::sync::atomic::AtomicI64,
}

impl Bare {
    pub(crate) async fn start(size: usize) -> Res<Self> {
        let (mut child, port) = spawn_self(&[("BENCH_BARE_SSE", "1")]).await?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let pid = child.id().ok_or("no pid")?;
        Ok(Self {
            child,
            stdin: tokio::sync::Mutex::new(stdin),
            pid,
            port,
            size,
            next: std::sync::atomic::AtomicI64::new(1),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Tells the server to send the next frame to every stream.
    pub(crate) async fn publish(&self) -> Res<Posted> {
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        let sent = Instant::now();
        let mut stdin = self.stdin.lock().await;
        stdin
            .write_all(format!("{position} {}\n", self.size).as_bytes())
            .await?;
        stdin.flush().await?;
        Ok(Posted {
            sent,
            took: sent.elapsed(),
            position,
        })
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The bare broadcast server's process: prints its port, then sends a frame of `size` bytes with
/// id `n` to every open stream for each line `n size` read from stdin; exits when stdin closes.
pub(crate) fn bare_serve() -> Res<()> {
    use tokio::io::AsyncBufReadExt;
    let rt = runtime()?;
    rt.block_on(async {
        let listener = announce_port().await?;
        let (tx, _) = tokio::sync::broadcast::channel::<Arc<[u8]>>(1024);
        let frames = tx.clone();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut words = line.split_whitespace();
                let (Some(id), Some(size)) = (words.next(), words.next()) else {
                    continue;
                };
                let size: usize = size.parse().unwrap_or(1_000);
                let head = format!("id: {id}\nevent: added\ndata: {{\"pad\":\"");
                let pad = size.saturating_sub(head.len() + 4);
                let event = format!("{head}{}\"}}\n\n", "x".repeat(pad));
                let chunk = format!("{:x}\r\n{event}\r\n", event.len());
                let _ = frames.send(Arc::from(chunk.into_bytes()));
            }
            std::process::exit(0);
        });
        loop {
            let (mut conn, _) = listener.accept().await?;
            let _ = conn.set_nodelay(true);
            let mut rx = tx.subscribe();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while find(&head, b"\r\n\r\n").is_none() {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if conn.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
                while let Ok(frame) = rx.recv().await {
                    if conn.write_all(&frame).await.is_err() {
                        return;
                    }
                }
            });
        }
    })
}
