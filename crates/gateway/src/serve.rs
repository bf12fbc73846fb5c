//! The accept loop: HTTP/1.1 connections served by hyper with a header read timeout (a client
//! that trickles its headers is disconnected), a cap on open connections in all and per TCP
//! peer, and a graceful shutdown that lets requests in flight finish within the grace period.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::app::Gateway;

/// Open connections per TCP peer.
#[derive(Default)]
struct PerPeer {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a peer; dropping it frees the slot.
struct PeerSlot {
    peers: Arc<PerPeer>,
    ip: IpAddr,
}

impl PerPeer {
    fn enter(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<PeerSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.peers.open.lock()
            && let Some(n) = open.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// hyper's own bound on request headers (it parses them into a buffer on the stack of
/// [`HYPER_STACK_HEADERS`] entries unless told another bound, which it then allocates on the
/// heap for every request): `None`, its default, while that is above `max_headers` — the
/// front middleware then answers 431 in the documented form up to it — and four times ours
/// otherwise.
fn hyper_header_bound(max_headers: usize) -> Option<usize> {
    (max_headers >= HYPER_STACK_HEADERS).then(|| max_headers.saturating_mul(4))
}

/// hyper's default bound on request headers, parsed without a heap allocation.
const HYPER_STACK_HEADERS: usize = 100;

/// Resolves once `stop` is true (never, if its sender is gone without saying so).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Serves `router` on `listener` until `stop` turns true.
pub(crate) async fn serve(
    gw: Gateway,
    listener: TcpListener,
    router: Router,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = &gw.config().limits;
    let grace = Duration::from_secs(limits.shutdown_grace_secs);
    let header_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    // hyper refuses beyond its own bound with an empty 431; above ours, so the front middleware
    // answers first, in the documented form.
    let hyper_max_headers = hyper_header_bound(limits.max_headers);
    let all = Arc::new(Semaphore::new(limits.max_connections));
    // Behind trusted proxies every connection comes from a proxy: the proxies cap their clients.
    let per_peer_cap = (gw.config().proxy.hops() == 0).then_some(limits.max_connections_per_client);
    let peers = Arc::new(PerPeer::default());
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(permit) = Arc::clone(&all).try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: too many open connections");
            drop(stream);
            continue;
        };
        let slot = match per_peer_cap {
            Some(cap) => match peers.enter(peer.ip(), cap) {
                Some(slot) => Some(slot),
                None => {
                    tracing::warn!(%peer, "connection refused: too many from this client");
                    drop(stream);
                    continue;
                }
            },
            None => None,
        };
        let _ = stream.set_nodelay(true);
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        if let Some(bound) = hyper_max_headers {
            http.max_headers(bound);
        }
        let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _held = (permit, slot);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "requests still running after the grace period; stopping");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_keeps_its_stack_buffer_above_our_header_limit() {
        assert_eq!(hyper_header_bound(64), None);
        assert_eq!(hyper_header_bound(99), None);
        assert_eq!(hyper_header_bound(100), Some(400));
        assert_eq!(hyper_header_bound(usize::MAX), Some(usize::MAX));
    }

    #[test]
    fn peer_slots_are_capped_and_freed() {
        let peers = Arc::new(PerPeer::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = peers.enter(ip, 2).unwrap();
        let _b = peers.enter(ip, 2).unwrap();
        assert!(peers.enter(ip, 2).is_none());
        assert!(peers.enter("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(peers.enter(ip, 2).is_some());
    }
}
