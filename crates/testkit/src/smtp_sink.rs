//! A real SMTP server for tests: [`SmtpSink`] listens on 127.0.0.1 port 0 and speaks enough SMTP
//! for lettre (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT),
//! keeping every accepted message in memory for the test to inspect. It can be told to refuse
//! recipients with a given reply code, to exercise permanent (5xx) and transient (4xx) failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// One message the sink accepted: the envelope and the raw message (headers and body, CRLF line
/// endings, dot-unstuffed, without the terminating `.` line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
    /// The name the client greeted with (`EHLO name`).
    pub hello: String,
}

impl Received {
    /// The value of the first header called `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or("");
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if line.starts_with([' ', '\t']) {
                if let Some(value) = value.as_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if value.is_some() {
                break;
            }
            if let Some((key, rest)) = line.split_once(':') {
                if key.trim().eq_ignore_ascii_case(name) {
                    value = Some(rest.trim().to_owned());
                }
            }
        }
        value
    }

    /// The body: everything after the first empty line.
    pub fn body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or("")
    }
}

#[derive(Debug, Default)]
struct Shared {
    messages: Mutex<Vec<Received>>,
    rcpt_reply: Mutex<Option<u16>>,
    arrived: Notify,
}

/// An SMTP server on loopback that accepts everything (unless told otherwise) and remembers it.
/// It stops when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    port: u16,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// Starts listening on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the SMTP sink binds to loopback");
        let port = listener.local_addr().expect("a local address").port();
        let shared = Arc::new(Shared::default());
        let server = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let shared = Arc::clone(&shared);
                    tokio::spawn(async move {
                        // A client hanging up mid-session is not the sink's problem.
                        let _ = session(stream, &shared).await;
                    });
                }
            }
        });
        Self {
            port,
            shared,
            server,
        }
    }

    /// `smtp://127.0.0.1:<port>`, as `NEWSROOM_SMTP_URL` takes it.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message accepted so far, in order of arrival.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// From now on answer every `RCPT TO` with `code` (e.g. 550 or 451) instead of 250; `None`
    /// accepts again.
    pub fn reject_recipients_with(&self, code: Option<u16>) {
        *self.shared.rcpt_reply.lock().unwrap() = code;
    }

    /// Waits until at least `n` messages have arrived or `timeout` passes, and returns all
    /// messages so far (fewer than `n` on timeout: the caller asserts).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            tokio::pin!(arrived);
            // Register before checking, so an arrival between the check and the wait is seen.
            arrived.as_mut().enable();
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.messages();
            }
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The address inside `MAIL FROM:<a@b> PARAMS` / `RCPT TO:<a@b>`.
fn path_argument(rest: &str) -> String {
    let rest = rest.trim_start();
    let path = match rest.strip_prefix('<') {
        Some(inner) => inner.split('>').next().unwrap_or(""),
        None => rest.split_whitespace().next().unwrap_or(""),
    };
    path.to_owned()
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 127.0.0.1 newsroom test SMTP sink ready\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    let mut hello = String::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let command = text.trim_end_matches(['\r', '\n']);
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                hello = command.get(5..).unwrap_or_default().trim().to_owned();
                "250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760\r\n"
                    .into()
            }
            "HELO" => {
                hello = command.get(5..).unwrap_or_default().trim().to_owned();
                "250 127.0.0.1\r\n".into()
            }
            "MAIL" => match command
                .get(5..)
                .and_then(|r| r.trim_start().strip_prefix_ci("FROM:"))
            {
                Some(rest) => {
                    from = Some(path_argument(rest));
                    to.clear();
                    "250 2.1.0 OK\r\n".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>\r\n".into(),
            },
            "RCPT" => match command
                .get(5..)
                .and_then(|r| r.trim_start().strip_prefix_ci("TO:"))
            {
                _ if from.is_none() => "503 5.5.1 MAIL first\r\n".into(),
                Some(rest) => {
                    let code = *shared.rcpt_reply.lock().unwrap();
                    match code {
                        Some(code) => format!("{code} recipient refused by the test sink\r\n"),
                        None => {
                            to.push(path_argument(rest));
                            "250 2.1.5 OK\r\n".into()
                        }
                    }
                }
                None => "501 5.5.4 Syntax: RCPT TO:<address>\r\n".into(),
            },
            "DATA" if from.is_none() || to.is_empty() => "503 5.5.1 RCPT first\r\n".into(),
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let data = read_data(&mut reader).await?;
                let received = Received {
                    from: from.take().unwrap_or_default(),
                    to: std::mem::take(&mut to),
                    data,
                    hello: hello.clone(),
                };
                shared.messages.lock().unwrap().push(received);
                shared.arrived.notify_waiters();
                "250 2.0.0 OK queued\r\n".into()
            }
            "RSET" => {
                from = None;
                to.clear();
                "250 2.0.0 OK\r\n".into()
            }
            "NOOP" => "250 2.0.0 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 2.0.0 Bye\r\n").await?;
                write.shutdown().await?;
                return Ok(());
            }
            _ => "502 5.5.2 Command not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// Reads message lines up to the lone `.` line, undoing dot-stuffing (RFC 5321 §4.5.2).
async fn read_data<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(content);
    }
}

trait StripPrefixCi {
    fn strip_prefix_ci(&self, prefix: &str) -> Option<&str>;
}

impl StripPrefixCi for str {
    fn strip_prefix_ci(&self, prefix: &str) -> Option<&str> {
        let head = self.get(..prefix.len())?;
        head.eq_ignore_ascii_case(prefix)
            .then(|| &self[prefix.len()..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn data_is_dot_unstuffed_up_to_the_lone_dot() {
        let wire: &[u8] = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nnext command\r\n";
        let mut reader = BufReader::new(wire);
        let data = read_data(&mut reader).await.unwrap();
        assert_eq!(data, "Subject: x\r\n\r\n.leading dot\r\n");
        let mut rest = String::new();
        reader.read_line(&mut rest).await.unwrap();
        assert_eq!(rest, "next command\r\n");
    }

    #[test]
    fn headers_unfold_and_paths_parse() {
        let received = Received {
            from: String::new(),
            to: vec![],
            data: "Subject: a long\r\n folded subject\r\nTo: x@y\r\n\r\nbody\r\n".into(),
            hello: String::new(),
        };
        assert_eq!(
            received.header("subject").as_deref(),
            Some("a long folded subject")
        );
        assert_eq!(received.header("To").as_deref(), Some("x@y"));
        assert_eq!(received.header("Cc"), None);
        assert_eq!(received.body(), "body\r\n");
        assert_eq!(path_argument("<a@b> BODY=8BITMIME"), "a@b");
        assert_eq!(path_argument(" a@b SMTPUTF8"), "a@b");
        assert_eq!(path_argument("<>"), "");
    }
}
