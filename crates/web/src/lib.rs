//! The HTTP edge every newsroom process shares: problem answers (RFC 9457), the request
//! extractors that parse paths, queries and JSON bodies into typed values, rate and size limits,
//! the shell of the site's pages and their Content-Security-Policy ([`page`]), bearer-token auth ([`Tokens`]), the server host with graceful shutdown, and the metrics
//! registry.
//!
//! **Architecture invariant:** bad input is answered here with a 4xx problem naming the field,
//! before any handler runs; a token is stored only as its digest.

pub mod auth;
pub mod extract;
pub mod limits;
pub mod page;
pub mod problem;
pub mod serve;
pub mod telemetry;

pub use auth::{IssuedToken, PasswordError, Principal, Tokens};
pub use extract::{
    int_param, parse_json, query_params, refuse_control_characters, whole_number, ApiPath, Auth,
    JsonBody,
};
pub use problem::{InternalError, Problem, ProblemDetails};
