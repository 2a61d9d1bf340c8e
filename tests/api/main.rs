//! End-to-end tests of the command API against a real SQLite file.

mod alerts;
mod auth;
mod auth_matrix;
mod browser;
mod concurrency;
mod desk;
mod developments;
mod editing;
mod faults;
mod feed;
mod follow;
mod hostile;
mod input;
mod limits;
mod long_story;
mod operations;
mod postgres;
mod processes;
mod reads;
mod relay;
mod retention;
mod roles;
mod schema;
mod stories;
mod tamper;
mod transfer;
