//! The services tests talk to: the machine's PostgreSQL and NATS (named by
//! `NEWSROOM_TEST_DATABASE_URL` and `NEWSROOM_TEST_NATS_URL`; without them a test says it is
//! skipped, and fails when `NEWSROOM_REQUIRE_SERVICES` is set), a fresh database per test
//! ([`TestDatabase`]), and servers of one test alone to kill and restart ([`PrivatePostgres`],
//! [`PrivateNats`]).

use std::path::PathBuf;

/// Reports a test that cannot run on this machine: it passes with `skipped: <why>`, unless
/// `NEWSROOM_REQUIRE_SERVICES` is set (CI), where a skip is a failure.
pub fn skip_or_fail(why: &str) {
    if std::env::var_os("NEWSROOM_REQUIRE_SERVICES").is_some() {
        panic!("required but unavailable: {why}");
    }
    eprintln!("skipped: {why}");
}

/// The NATS server integration tests use (`NEWSROOM_TEST_NATS_URL`), or `None` after saying the
/// test is skipped (a failure when `NEWSROOM_REQUIRE_SERVICES` is set).
pub fn nats_test_url() -> Option<String> {
    match std::env::var("NEWSROOM_TEST_NATS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip_or_fail("NEWSROOM_TEST_NATS_URL is not set: no NATS server to test against");
            None
        }
    }
}

/// A fresh PostgreSQL database for one test, dropped when the guard is. `None` (after saying the
/// test is skipped) when `NEWSROOM_TEST_DATABASE_URL` is not set.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    _database: crate::pg::Database,
}

impl TestDatabase {
    pub async fn create() -> Option<Self> {
        let admin_url = match std::env::var("NEWSROOM_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                skip_or_fail(
                    "NEWSROOM_TEST_DATABASE_URL is not set: no PostgreSQL to test against",
                );
                return None;
            }
        };
        let database = crate::pg::Database::create(&admin_url, "newsroom_test")
            .await
            .expect("the PostgreSQL test server answers and a test database can be created");
        Some(Self {
            url: database.url.clone(),
            _database: database,
        })
    }
}

/// A loopback port nothing listens on right now, for a child process to bind (chromedriver, a
/// private nats-server).
pub fn free_port() -> u16 {
    crate::http::free_port().expect("a free loopback port")
}

/// A `nats-server` of one test alone, with JetStream in `dir`: a test may stop and restart it
/// without disturbing the others. `None` (after saying the test is skipped) without the binary.
#[derive(Debug)]
pub struct PrivateNats {
    child: std::process::Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl PrivateNats {
    pub fn start(port: u16, dir: &std::path::Path) -> Option<Self> {
        let binary = "/usr/sbin/nats-server";
        if !std::path::Path::new(binary).exists() {
            skip_or_fail("nats-server is not installed at /usr/sbin/nats-server");
            return None;
        }
        let child = std::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        Some(Self {
            child,
            port,
            dir: dir.to_owned(),
        })
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.stop();
        *self = Self::start(self.port, &self.dir.clone()).expect("restarts");
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL server of one test alone: its own data directory (a temporary directory), port
/// and socket folder, trust authentication, so the test may stop and restart it without
/// disturbing the tests that share the machine's server. PostgreSQL refuses to run as root, so
/// when the tests run as root the server runs as the `postgres` user (`runuser`). Stopped, and
/// its files removed, when dropped.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster (`initdb`) and starts it on a free port; `None` (after saying the test
    /// is skipped) when PostgreSQL's server binaries are not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = Self::binaries() else {
            skip_or_fail(
                "PostgreSQL's server binaries (initdb, pg_ctl) are not under /usr/lib/postgresql/*/bin",
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        use std::os::unix::fs::MetadataExt;
        let as_postgres = std::fs::metadata(dir.path()).expect("temp dir").uid() == 0;
        if as_postgres {
            let chown = std::process::Command::new("chown")
                .arg("postgres:")
                .arg(dir.path())
                .output()
                .expect("chown runs");
            if !chown.status.success() {
                skip_or_fail("running as root and there is no `postgres` user to run PostgreSQL");
                return None;
            }
        }
        let mut pg = Self {
            bin,
            dir,
            port: free_port(),
            as_postgres,
            running: false,
        };
        let data = pg.data();
        pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                // A test's cluster need not survive a power cut of the machine.
                "--no-sync",
            ],
        );
        pg.start_again();
        Some(pg)
    }

    /// The newest installed version's `bin` folder holding `initdb` and `pg_ctl`.
    fn binaries() -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let version = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("pg_ctl").exists())
                    .then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs one of PostgreSQL's programs (as `postgres` if we are root); panics, with the
    /// server's log, if it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .output(program, args)
            .unwrap_or_else(|e| panic!("{program} runs: {e}"));
        if !output.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
    }

    fn output(&self, program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            std::process::Command::new(&path)
        };
        command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .output()
    }

    /// The URL of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again) on its port and waits until it accepts connections.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "start", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options,
            ],
        );
        self.running = true;
    }

    /// Stops the server the hard way (`-m immediate`: connections are cut, nothing is flushed
    /// first; the next start recovers from the WAL), as a crash or a kill would.
    pub fn stop(&mut self) {
        let data = self.data();
        self.run("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
        self.running = false;
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            // Never panics: a drop may run while a failed test unwinds.
            let _ = self.output("pg_ctl", &["stop", "-D", &data, "-m", "immediate", "-w"]);
        }
    }
}
