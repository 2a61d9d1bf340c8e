//! End-to-end tests of newsroom through its HTTP API, its pages and its processes, on real SQLite
//! files, PostgreSQL and NATS; the harness is `crates/testkit` (`newsroom_testkit::prelude`, the
//! feature `app`). A map of the modules:
//!
//! - Most modules (`stories.rs`, `developments.rs`, `reads.rs`, `desk.rs`, `alerts.rs`, …) start
//!   the real `Newsroom` on port 0 with `spawn_app()` (temporary SQLite files, a token for each
//!   role) or `spawn_app_on_postgres()` (a fresh PostgreSQL database per test), and talk to it over
//!   HTTP through `TestApp`'s helpers.
//! - Real peers for the notifier: axum webhook receivers on port 0 (`testkit::receiver`), an
//!   SMTP sink speaking real SMTP to lettre (`testkit::smtp_sink`, `--test smtp`), the machine's
//!   NATS (`NEWSROOM_TEST_NATS_URL`), and a TCP proxy that refuses connections, loses answers
//!   after the app did the work, or answers 503 as a gateway would (`testkit::flaky`).
//! - Browser tests (`browser.rs`, `reader.rs`, `follow.rs`, `push.rs`) drive headless Chromium
//!   through chromedriver (fantoccini; `testkit::chrome`); `reader.rs` runs it in a time zone of
//!   its own and runs axe-core (WCAG 2.x A/AA) on the reader pages and the desk's forms at phone
//!   and desktop sizes, and measures tap targets; screenshots go under `target/screenshots/`.
//! - Scale-out (`relay.rs`, `roles.rs`, `postgres.rs`, `transfer.rs`): the machine's PostgreSQL (a
//!   fresh database per test) and NATS (a stream per test), and `nats-server` processes of their
//!   own — one to stop and restart, and the 3-node cluster of `deploy/local-cluster.sh` to kill a
//!   node of. `faults.rs` kills and restarts a `PrivatePostgres` under a running newsroom.
//!   `postgres.rs` also runs two projectors on the shared views while reporters and editors write
//!   and compares the result with a rebuild into SQLite, lets three copies lease the notifier's
//!   partitions (even shares, disjoint, a dead copy's taken over), and follows alerts queued side
//!   by side below `alert_horizon`.
//! - `crates/newsroom/tests/processes.rs` (a test of the binary's own package, with this harness
//!   as a dev-dependency) runs the `newsroom` binary itself, one process per role, and kills
//!   processes with SIGKILL: a command process with commits not yet published, a projector copy
//!   and one of two notifier copies sharing the queue mid-stream, and one of three notifier copies
//!   in the middle of a fan-out to 30 subscribers (afterwards every alert arrived under one
//!   `webhook-id`, each story's in order).
//! - Protections SECURITY.md lists: `auth_matrix.rs`, `hostile.rs`, `concurrency.rs`,
//!   `subscriber_safety.rs` (caps, duplicates, double opt-in, unsubscribe links, streams ending
//!   with their token), `desk_hostile.rs` and `follow_hostile.rs` (proptest-generated hostile
//!   forms; the alert forms' on SQLite and PostgreSQL), `stream_safety.rs`, `tamper.rs`.
//! - `push.rs`: a push service stand-in on port 0 receiving the running notifier's pushes,
//!   decrypted by Python's `http_ece` and their VAPID tokens verified by `cryptography`
//!   (`tests/python/push_check.py`, in `.ci/venv`'s environment, `NEWSROOM_TEST_PYTHON`); and the
//!   alerts page's worker in Chromium, given pushes through DevTools'
//!   `ServiceWorker.deliverPushMessage`.
//! - `undo.rs`: undo windows with the clock in the test's hand (nothing read or alerted during the
//!   window, one release and one alert at its end, on SQLite and PostgreSQL).
//! - `budget.rs` asks every public read of a log and of one twice its size and compares the work
//!   counted (`newsroom_log::db::ReadWork`).
//!
//! `crates/newsroom/tests/cli.rs` drives the compiled binary the way a newcomer does.

mod alerts;
mod auth;
mod auth_matrix;
mod backends;
mod browser;
mod budget;
mod concurrency;
mod connections;
mod desk;
mod desk_hostile;
mod developments;
mod editing;
mod embargo;
mod faults;
mod feed;
mod follow;
mod follow_hostile;
mod hostile;
mod input;
mod limits;
mod long_story;
mod operations;
mod postgres;
mod push;
mod reader;
mod reads;
mod relations;
mod relay;
mod retention;
mod roles;
mod schema;
mod search;
mod stories;
mod stream_safety;
mod subscriber_safety;
mod tamper;
mod transfer;
mod undo;
