//! End-to-end tests of the command API against a real SQLite file.

mod alerts;
mod auth;
mod browser;
mod desk;
mod developments;
mod editing;
mod feed;
mod input;
mod limits;
mod operations;
mod postgres;
mod reads;
mod schema;
mod stories;
mod tamper;
mod transfer;
