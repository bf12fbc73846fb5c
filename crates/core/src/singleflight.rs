//! In-process single flight: concurrent callers that ask for the same key share **one**
//! execution of the work and all receive its result.
//!
//! The token cache de-duplicates app-token refreshes internally; [`SingleFlight`] is the same
//! idea for anything else that must not run twice at once, such as refreshing a user token with
//! a *single-use* refresh token (Feishu): a second refresh with the same refresh token would be
//! refused and, worse, the first refresh's new token would be the only valid one. Collapsing the
//! two calls keeps both callers logged in. For that case use
//! [`TokenCache::single_flight`](crate::token_cache::TokenCache::single_flight), which adds the
//! cross-replica step (the token store's lease) on top of this type;
//! [`Sso::refresh_user_token`](crate::sso::Sso::refresh_user_token) already does.
//!
//! The work runs as a **detached** task on the current Tokio runtime: a caller that is cancelled
//! (its request timed out, the browser went away) does not cancel the upstream call that the
//! other callers wait for, nor lose a result that already consumed a single-use credential.
//! Results are not cached: once a flight finishes, the next call for the key runs the work again.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use unilogin_core::singleflight::SingleFlight;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let flights: SingleFlight<String, u32> = SingleFlight::new();
//! let calls = Arc::new(AtomicU32::new(0));
//! let work = |calls: Arc<AtomicU32>| move || async move {
//!     tokio::task::yield_now().await;
//!     Ok(calls.fetch_add(1, Ordering::SeqCst) + 100)
//! };
//! let (a, b) = tokio::join!(
//!     flights.run("key".to_string(), work(calls.clone())),
//!     flights.run("key".to_string(), work(calls.clone())),
//! );
//! assert_eq!((a.unwrap(), b.unwrap()), (100, 100));
//! assert_eq!(calls.load(Ordering::SeqCst), 1);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::error::{Error, Result};

type Slot<T> = watch::Receiver<Option<Result<T>>>;

struct Shared<K, T> {
    flights: Mutex<HashMap<K, (u64, Slot<T>)>>,
    next_id: AtomicU64,
}

impl<K: Eq + Hash, T> Shared<K, T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, (u64, Slot<T>)>> {
        // Every critical section is a single insert/lookup/remove: the map stays consistent.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Runs at most one execution per key at a time; see the [module docs](self).
///
/// Cheap to clone; clones share the flights. `Debug` shows only the number of flights (keys may
/// be secrets, such as refresh tokens).
pub struct SingleFlight<K, T> {
    shared: Arc<Shared<K, T>>,
}

impl<K, T> Clone for SingleFlight<K, T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Eq + Hash, T> Default for SingleFlight<K, T> {
    fn default() -> Self {
        Self {
            shared: Arc::new(Shared {
                flights: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }
}

impl<K: Eq + Hash, T> fmt::Debug for SingleFlight<K, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlight")
            .field("in_flight", &self.shared.lock().len())
            .finish()
    }
}

/// Removes a flight's entry when its task ends, however it ends (result, panic, runtime
/// shutdown), but only if the entry is still that flight's.
struct Landing<K: Eq + Hash, T> {
    shared: Arc<Shared<K, T>>,
    key: Option<K>,
    id: u64,
}

impl<K: Eq + Hash, T> Drop for Landing<K, T> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut flights = self.shared.lock();
            if flights.get(&key).is_some_and(|(id, _)| *id == self.id) {
                flights.remove(&key);
            }
        }
    }
}

impl<K, T> SingleFlight<K, T>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    /// No flights yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of executions currently running.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().len()
    }

    /// The result of `work` for `key`: if an execution for `key` is already running, waits for
    /// it (and `work` is dropped unused); otherwise starts `work` as a detached task and waits
    /// for it. Every waiter gets a clone of the same result, error included.
    ///
    /// Needs a Tokio runtime ([`Error::Internal`] outside one). If the work panics, its waiters
    /// get [`Error::Internal`] and the next call runs the work again.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Result<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Internal("SingleFlight::run needs a tokio runtime".into()))?;
        // The lock is held only in this block: never across an await.
        let lead = {
            let mut flights = self.shared.lock();
            match flights.get(&key) {
                Some((_, slot)) => Err(slot.clone()),
                None => {
                    let (tx, rx) = watch::channel(None);
                    let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
                    flights.insert(key.clone(), (id, rx.clone()));
                    Ok((tx, rx, id))
                }
            }
        };
        let (tx, rx, id) = match lead {
            Ok(lead) => lead,
            Err(joined) => return Self::wait(joined).await,
        };
        let landing = Landing {
            shared: self.shared.clone(),
            key: Some(key),
            id,
        };
        // `landing` is dropped (entry removed) if `work()` itself panics.
        let fut = work();
        drop(handle.spawn(async move {
            let result = fut.await;
            // Publish first: callers that join between now and the removal below get this
            // result rather than starting a second execution.
            tx.send_replace(Some(result));
            drop(landing);
        }));
        Self::wait(rx).await
    }

    async fn wait(mut rx: Slot<T>) -> Result<T> {
        match rx.wait_for(Option::is_some).await {
            Ok(value) => value
                .clone()
                .unwrap_or_else(|| Err(Error::Internal("single flight without a result".into()))),
            Err(_) => Err(Error::Internal(
                "the shared task ended without a result (it panicked or the runtime stopped)"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    use super::*;

    fn counting(
        calls: &Arc<AtomicU32>,
        delay: Duration,
    ) -> impl FnOnce() -> std::pin::Pin<Box<dyn Future<Output = Result<u32>> + Send>> + use<> {
        let calls = calls.clone();
        move || {
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                Ok(calls.fetch_add(1, Ordering::SeqCst) + 1)
            })
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_execution() {
        let flights: SingleFlight<&'static str, u32> = SingleFlight::new();
        let calls = Arc::new(AtomicU32::new(0));
        let d = Duration::from_millis(50);
        let (a, b, c) = tokio::join!(
            flights.run("k", counting(&calls, d)),
            flights.run("k", counting(&calls, d)),
            flights.run("other", counting(&calls, d)),
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2, "one per key");
        assert_eq!(a.unwrap(), b.unwrap());
        assert!(c.is_ok());
        assert_eq!(flights.in_flight(), 0);
        // Results are not cached: a later call runs again.
        let again = flights.run("k", counting(&calls, d)).await.unwrap();
        assert_eq!(again, 3);
    }

    #[tokio::test]
    async fn errors_are_shared_too() {
        let flights: SingleFlight<u8, u32> = SingleFlight::new();
        let work = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<u32, _>(Error::Internal("boom".into()))
        };
        let (a, b) = tokio::join!(flights.run(1, work), flights.run(1, work));
        assert!(matches!(a, Err(Error::Internal(m)) if m == "boom"));
        assert!(matches!(b, Err(Error::Internal(m)) if m == "boom"));
    }

    #[tokio::test]
    async fn a_cancelled_caller_does_not_cancel_the_work() {
        let flights: SingleFlight<u8, u32> = SingleFlight::new();
        let calls = Arc::new(AtomicU32::new(0));
        let first = flights.run(7, counting(&calls, Duration::from_millis(100)));
        // The first caller gives up after 10 ms; the work keeps running for the second.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), first)
                .await
                .is_err()
        );
        let second = flights
            .run(7, counting(&calls, Duration::from_millis(1)))
            .await;
        assert_eq!(second.unwrap(), 1);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_work_fails_its_waiters_and_is_forgotten() {
        let flights: SingleFlight<u8, u32> = SingleFlight::new();
        let panicky = || async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            if std::hint::black_box(false) {
                return Ok(0);
            }
            panic!("work panicked (expected by this test)")
        };
        let (a, b) = tokio::join!(flights.run(1, panicky), flights.run(1, panicky));
        assert!(matches!(a, Err(Error::Internal(_))), "{a:?}");
        assert!(matches!(b, Err(Error::Internal(_))), "{b:?}");
        assert_eq!(flights.in_flight(), 0);
        assert_eq!(flights.run(1, || async { Ok(5) }).await.unwrap(), 5);
    }

    #[test]
    fn needs_a_runtime_and_debug_hides_keys() {
        let flights: SingleFlight<String, u32> = SingleFlight::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        // Polled by hand, outside any runtime context: the error path.
        let fut = flights.run("secret-key".into(), || async { Ok(1) });
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(Err(Error::Internal(m))) => assert!(m.contains("runtime")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            rt.block_on(flights.run("k".into(), || async { Ok(2) }))
                .unwrap(),
            2
        );
        let dbg = format!("{flights:?}");
        assert!(
            !dbg.contains("secret-key") && dbg.contains("in_flight"),
            "{dbg}"
        );
    }
}
