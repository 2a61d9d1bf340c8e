//! Slow and greedy clients, with real sockets: a connection that does not send a request's
//! headers (partial headers, nothing at all, or nothing after an answer on a kept-alive
//! connection) is closed after the header-read timeout, and one address cannot hold more than its
//! share of connections.

use std::net::SocketAddr;
use std::time::Duration;

use newsroom_testkit::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Far beyond the timeouts configured here: a connection still open then was never going to be
/// closed.
const BOUND: Duration = Duration::from_secs(15);

fn address(app: &TestApp) -> SocketAddr {
    app.address
        .trim_start_matches("http://")
        .parse()
        .expect("the app's address")
}

/// Reads until the server closes the connection; what it sent first. Panics if it stays open.
async fn closed_by_server(stream: &mut TcpStream, what: &str) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(BOUND, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

/// One request on `stream`, and the head of its answer (the connection stays open).
async fn ask(stream: &mut TcpStream, path: &str) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: newsroom.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn connections_that_do_not_send_their_headers_in_time_are_closed() {
    let app = spawn_app_with(|s| {
        s.command.header_read_timeout_secs = 1;
        s.command.request_timeout_secs = 60;
    })
    .await;
    let at = address(&app);

    // Partial headers, never finished.
    let mut partial = TcpStream::connect(at).await.unwrap();
    partial
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: newsroom.test\r\nX-Slow: ")
        .await
        .unwrap();
    // A connection that never says anything.
    let mut silent = TcpStream::connect(at).await.unwrap();
    // A kept-alive connection that goes quiet after an answer.
    let mut idle = TcpStream::connect(at).await.unwrap();
    let answer = ask(&mut idle, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    closed_by_server(&mut partial, "partial headers").await;
    closed_by_server(&mut silent, "a silent connection").await;
    closed_by_server(&mut idle, "an idle kept-alive connection").await;

    // A client that sends its request in time is served as before.
    let health = app.call(reqwest::Method::GET, "/healthz", None, None).await;
    health.ok(200);
}

/// A connection from `local` (a loopback address) to `at`.
async fn connect_from(local: &str, at: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(at).await.unwrap()
}

#[tokio::test]
async fn one_address_cannot_hold_more_connections_than_its_cap() {
    let app = spawn_app_with(|s| {
        s.command.connections_per_address = 3;
        s.command.header_read_timeout_secs = 60;
    })
    .await;
    let at = address(&app);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.1", at).await);
    }
    // The server takes connections in the order they came: the fourth is over the cap.
    let mut extra = connect_from("127.0.0.1", at).await;
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: newsroom.test\r\n\r\n")
        .await
        .unwrap();
    let refused = closed_by_server(&mut extra, "the connection over the cap").await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(refused.contains("application/problem+json"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after"),
        "{refused}"
    );

    // The connections within the cap are served, and so is another address.
    let answer = ask(&mut held[0], "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let mut other = connect_from("127.0.0.2", at).await;
    let answer = ask(&mut other, "/healthz").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Once one closes, the address may open another.
    drop(held.pop());
    let mut served = false;
    for _ in 0..100 {
        let mut again = connect_from("127.0.0.1", at).await;
        if ask(&mut again, "/healthz")
            .await
            .starts_with("HTTP/1.1 200")
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed place is given to the next connection");
}

#[tokio::test]
async fn a_live_stream_is_not_cut_by_the_header_read_timeout() {
    let app = spawn_app_with(|s| s.command.header_read_timeout_secs = 1).await;
    let story = app.open_story(false).await;
    // The stream is served from the views: wait until they hold the story.
    let head = app.head().await;
    app.story_at(&story, head).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let head = ask(&mut stream, &format!("/v1/stories/{story}/stream")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    // Longer than the header-read timeout, with nothing to send.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let filing = development("hack_reported");
    let id = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    while !String::from_utf8_lossy(&got).contains(&id) {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("the development on the stream")
            .unwrap();
        assert!(
            n > 0,
            "the stream was closed: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
}

/// Reads one whole answer (head and a `Content-Length` body) from `stream`: its head, or `None`
/// if the server closed the connection before answering.
async fn answer(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("an answer or a close")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while got.len() < head_end + length {
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf))
            .await
            .expect("the rest of the body")
            .unwrap();
        assert!(n > 0, "closed in the middle of a body");
        got.extend_from_slice(&buf[..n]);
    }
    Some(head)
}

#[tokio::test]
async fn a_401_for_a_body_never_read_keeps_the_connection_usable_or_says_it_closes() {
    // A client on a kept-alive connection posts without a token: the server refuses before it
    // reads the body. Then either the connection still serves the next request, or the refusal
    // said `Connection: close` — never a silent drop the client finds on its next request.
    let app = spawn_app().await;
    let at = address(&app);
    for size in [16, 4_000, 60_000] {
        for chunked in [false, true] {
            let mut stream = TcpStream::connect(at).await.unwrap();
            let body = format!("{{\"slug\":\"x\",\"headline\":\"{}\"}}", "y".repeat(size));
            let framing = if chunked {
                "Transfer-Encoding: chunked\r\n".to_owned()
            } else {
                format!("Content-Length: {}\r\n", body.len())
            };
            let encoded = if chunked {
                format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len())
            } else {
                body.clone()
            };
            let request = format!(
                "POST /v1/stories HTTP/1.1\r\nHost: newsroom.test\r\n\
                 Content-Type: application/json\r\n{framing}\r\n{encoded}"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let head = answer(&mut stream)
                .await
                .unwrap_or_else(|| panic!("{size} {chunked}: no answer at all"));
            assert!(head.starts_with("http/1.1 401"), "{head}");
            if head.contains("connection: close") {
                continue;
            }
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: newsroom.test\r\n\r\n")
                .await
                .unwrap();
            let next = answer(&mut stream).await.unwrap_or_else(|| {
                panic!(
                    "{size} bytes, chunked {chunked}: the 401 kept the connection alive \
                     (no `Connection: close`) but the next request found it closed: {head}"
                )
            });
            assert!(next.starts_with("http/1.1 200"), "{next}");
        }
    }
}
