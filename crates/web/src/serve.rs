//! Serving the router over HTTP/1.1 connections, with what hyper offers against slow and greedy
//! clients (`axum::serve` exposes none of it: hyper's header-read timeout needs a timer it does
//! not set, so a connection sending partial headers, or nothing, stayed open for good).
//!
//! - **Header-read timeout** (hyper's `http1::Builder::header_read_timeout`, with tokio's
//!   timer): hyper starts it whenever the connection waits for a request head — as soon as it is
//!   accepted, and again after each answer on a kept-alive connection — so one timeout closes
//!   connections sending partial headers, connections sending nothing, and kept-alive connections
//!   left idle. It does not run while an answer is being sent (a live stream stays open).
//! - **Connections per address**: each client address (an IPv6 /64, which one host usually
//!   has whole) may hold a bounded number of connections; the next is answered `429` (a problem
//!   with `Retry-After`, `Connection: close`) and closed, without reaching the router.
//!
//! A request's own time (body included) is bounded by the router's request timeout (408).
//! Graceful shutdown is hyper-util's: the listener stops, idle connections close, answers in
//! flight finish.
//!
//! Each request carries its peer's `ConnectInfo`; [`client_address`] is what "per address" means
//! everywhere (rate limits, connection and stream caps): an IPv4 address, or an IPv6 /64.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::problem::Problem;

/// What the server allows a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a connection may take to send a request's headers once the server waits for
    /// them (also how long a kept-alive connection may stay idle).
    pub header_read_timeout: Duration,
    /// Open connections per client address; 0 is no cap.
    pub per_address: usize,
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the connections finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut refusing = http.clone();
    refusing.keep_alive(false);
    let open = OpenConnections::new(limits.per_address);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let Some(place) = open.take(peer.ip()) else {
            metrics::counter!("newsroom_connections_refused_total").increment(1);
            let refusal = refusing.serve_connection(io, hyper::service::service_fn(too_many));
            tokio::spawn(refusal);
            continue;
        };
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let connection =
            graceful.watch(http.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The answer on a connection over its address's cap.
async fn too_many(_: Request<Incoming>) -> Result<axum::response::Response, Infallible> {
    let mut answer = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-connections",
        "Too many connections",
        "this address has too many connections open; close one or try again later",
    )
    .retry_after(1)
    .into_response();
    answer
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(answer)
}

/// As `axum::serve` does: a failed accept of one connection is nothing; running out of file
/// descriptors (or the like) is waited out for a second, so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The address a client is counted by, wherever newsroom counts per address (connections,
/// rate limits, live and alert streams): an IPv4 address (also when mapped into IPv6), or an IPv6
/// /64 (written as its first address), since one host usually holds a whole /64 and could
/// otherwise walk round any per-address limit.
pub fn client_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        },
    }
}

/// Who a connection counts against: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Client {
    V4(u32),
    V6Net(u64),
}

impl Client {
    fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Client::V4(v4.into()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::V4(v4.into()),
                None => Client::V6Net((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// Open connections per client.
#[derive(Debug, Clone)]
struct OpenConnections {
    cap: usize,
    open: Arc<Mutex<HashMap<Client, usize>>>,
}

/// One connection's place in its client's count, given back when dropped.
#[derive(Debug)]
struct Place {
    client: Client,
    open: Option<Arc<Mutex<HashMap<Client, usize>>>>,
}

impl OpenConnections {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            open: Arc::default(),
        }
    }

    /// A place for one more connection of `ip`, if its client is under the cap.
    fn take(&self, ip: IpAddr) -> Option<Place> {
        let client = Client::of(ip);
        if self.cap == 0 {
            return Some(Place { client, open: None });
        }
        let mut open = self.open.lock().expect("connection counts lock");
        let count = open.entry(client).or_default();
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(Place {
            client,
            open: Some(self.open.clone()),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(open) = &self.open else { return };
        let mut open = open.lock().expect("connection counts lock");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_a_place_back_when_a_connection_ends() {
        let open = OpenConnections::new(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = open.take(ip).unwrap();
        let _second = open.take(ip).unwrap();
        assert!(open.take(ip).is_none());
        assert!(open.take("192.0.2.8".parse().unwrap()).is_some());
        drop(first);
        assert!(open.take(ip).is_some());
    }

    #[test]
    fn an_ipv6_host_counts_as_its_64_and_mapped_ipv4_as_the_ipv4_address() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Client::of(a), Client::of(b));
        assert_ne!(Client::of(a), Client::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(Client::of(mapped), Client::of("192.0.2.7".parse().unwrap()));
    }

    #[test]
    fn no_cap_counts_nothing() {
        let open = OpenConnections::new(0);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let places: Vec<_> = (0..1000).map(|_| open.take(ip).unwrap()).collect();
        assert_eq!(places.len(), 1000);
        assert!(open.open.lock().unwrap().is_empty());
    }
}
