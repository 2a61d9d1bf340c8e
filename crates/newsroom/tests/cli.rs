//! The binary as a newcomer meets it: first start prints an admin token, the terminal client
//! files a story, SIGTERM stops the server cleanly.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_newsroom");

struct Server {
    child: Child,
    address: String,
    admin_token: String,
    data_dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `newsroom` with no arguments (as `cargo run` does) on a free port, with `data_dir`;
/// returns the child and the lines it printed up to and including "newsroom is serving".
fn spawn(data_dir: &std::path::Path) -> (Child, Vec<String>) {
    let mut child = Command::new(BIN)
        .env("NEWSROOM_LISTEN", "127.0.0.1:0")
        .env("NEWSROOM_DATA_DIR", data_dir)
        .env_remove("NEWSROOM_DATABASE_URL")
        .env_remove("NEWSROOM_CONFIG")
        .env("NEWSROOM_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not announce itself: {lines:#?}");
        };
        let done = line.contains("newsroom is serving");
        lines.push(line);
        if done {
            // Keep draining so the server never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return (child, lines);
        }
    }
}

/// A first start: reads the admin token and the address the server prints.
fn start_server() -> Server {
    let data_dir = tempfile::tempdir().unwrap();
    let (child, lines) = spawn(data_dir.path());
    let admin_token = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("nr_"))
        .expect("first start prints an admin token")
        .to_owned();
    let serving = lines.last().unwrap();
    let at = serving.find("address=").expect("the address is logged") + "address=".len();
    let address = serving[at..].split_whitespace().next().unwrap().to_owned();
    Server {
        child,
        address: format!("http://{address}"),
        admin_token,
        data_dir,
    }
}

fn client(server: &Server, token: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NEWSROOM_SERVER", &server.address)
        .env("NEWSROOM_TOKEN", token)
        .env("NEWSROOM_DATA_DIR", server.data_dir.path())
        .output()
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.success(), json, stderr)
}

#[test]
fn a_newcomer_starts_the_server_and_files_a_story_from_the_terminal() {
    let server = start_server();
    let admin = server.admin_token.clone();

    let (ok, story, err) = client(
        &server,
        &admin,
        &[
            "story",
            "open",
            "--slug",
            "campaign-hack",
            "--headline",
            "Campaign reports a hack",
            "--review-required",
        ],
    );
    assert!(ok, "{err}");
    let story_id = story["id"].as_str().unwrap().to_owned();

    // An admin creates a reporter token in the local store while the server runs.
    let (ok, reporter, err) = client(
        &server,
        &admin,
        &[
            "token",
            "create",
            "--role",
            "reporter",
            "--name",
            "Rita Reporter",
        ],
    );
    assert!(ok, "{err}");
    let reporter = reporter["token"].as_str().unwrap().to_owned();

    let (ok, filed, err) = client(
        &server,
        &reporter,
        &[
            "story",
            "record",
            &story_id,
            "--kind",
            "hack_reported",
            "--headline",
            "Campaign A says its email was breached",
            "--actor",
            "Campaign A",
            "--source-name",
            "Campaign spokesperson",
            "--occurred-at",
            "2026-10-01T09:30:00Z",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(filed["status"], "pending_review");
    let development = filed["id"].as_str().unwrap().to_owned();

    // A reporter may not approve; the refusal is explained, not a crash.
    let (ok, _, err) = client(
        &server,
        &reporter,
        &["story", "approve", &story_id, &development],
    );
    assert!(!ok);
    assert!(err.contains("403") && err.contains("editor"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");

    let (ok, _, err) = client(
        &server,
        &admin,
        &["story", "approve", &story_id, &development],
    );
    assert!(ok, "{err}");

    let (ok, events, err) = client(&server, &admin, &["story", "events", &story_id]);
    assert!(ok, "{err}");
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["StoryOpened", "DevelopmentRecorded", "DevelopmentApproved"]
    );
    assert_eq!(events[1]["metadata"]["author_name"], "Rita Reporter");
}

#[test]
fn the_admin_token_is_printed_only_on_first_start_and_sigterm_stops_cleanly() {
    let mut server = start_server();
    assert!(server.data_dir.path().join("newsroom.db").exists());
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");

    // Second start on the same data: no new admin token.
    let (mut second, lines) = spawn(server.data_dir.path());
    assert!(
        lines.iter().all(|l| !l.contains("nr_")),
        "no token on a second start: {lines:#?}"
    );
    Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(second.wait().unwrap().success());
}

/// Runs `newsroom <args>` against the store in `data_dir`; returns success, stdout and stderr.
fn admin_command(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("NEWSROOM_DATA_DIR", data_dir)
        .env_remove("NEWSROOM_DATABASE_URL")
        .env_remove("NEWSROOM_CONFIG")
        .output()
        .expect("the binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_log_exported_from_a_running_server_imports_into_an_empty_store_and_verifies() {
    let server = start_server();
    let admin = server.admin_token.clone();
    let (ok, story, err) = client(
        &server,
        &admin,
        &[
            "story",
            "open",
            "--slug",
            "exported",
            "--headline",
            "Exported story",
        ],
    );
    assert!(ok, "{err}");
    let story_id = story["id"].as_str().unwrap().to_owned();
    let (ok, _, err) = client(
        &server,
        &admin,
        &[
            "story",
            "record",
            &story_id,
            "--kind",
            "update",
            "--headline",
            "It moved",
        ],
    );
    assert!(ok, "{err}");

    // Exported while the server runs.
    let backup = tempfile::tempdir().unwrap();
    let file = backup.path().join("log.jsonl");
    let file_arg = file.to_str().unwrap();
    let (ok, _, err) = admin_command(server.data_dir.path(), &["export", "--output", file_arg]);
    assert!(ok, "{err}");
    assert!(err.contains("exported 2 events of 1 stories"), "{err}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "an export is as private as the log"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["position"], 2);
    assert_eq!(lines[1]["event_type"], "DevelopmentRecorded");
    assert!(lines[1]["metadata"]["hash"].is_string());

    let target = tempfile::tempdir().unwrap();
    let (ok, out, err) = admin_command(target.path(), &["import", file_arg]);
    assert!(ok, "{err}");
    assert!(out.contains("imported 2 events of 1 stories"), "{out}");
    let (ok, out, err) = admin_command(target.path(), &["verify"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("checked 2 events of 1 stories: every chain is intact"),
        "{out}"
    );
    // The store is no longer empty: a second import is refused and changes nothing.
    let (ok, _, err) = admin_command(target.path(), &["import", file_arg]);
    assert!(!ok);
    assert!(err.contains("empty store"), "{err}");
    let (ok, out, _) = admin_command(target.path(), &["export"]);
    assert!(ok);
    assert_eq!(
        out, text,
        "the imported log exports exactly as the original"
    );
}
