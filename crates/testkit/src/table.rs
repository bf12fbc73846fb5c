//! The fakes' in-memory state: a mutex-guarded map ([`Table`]) and the one way the crate takes a
//! lock ([`lock`]).

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Lock `m`, ignoring poisoning: every critical section in the crate is a single insert, read or
/// in-place update, so a panic elsewhere cannot leave the data half-written.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A thread-safe map whose reads hand out clones (apps, users, per-user extras).
#[derive(Debug)]
pub(crate) struct Table<K, V> {
    map: Mutex<BTreeMap<K, V>>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Self {
            map: Mutex::new(BTreeMap::new()),
        }
    }
}

impl<K: Ord, V: Clone> FromIterator<(K, V)> for Table<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            map: Mutex::new(iter.into_iter().collect()),
        }
    }
}

impl<K: Ord, V: Clone> Table<K, V> {
    /// Insert or replace; returns the previous value.
    pub(crate) fn insert(&self, key: K, value: V) -> Option<V> {
        lock(&self.map).insert(key, value)
    }

    /// Remove; returns the value if there was one.
    pub(crate) fn remove<Q: Ord + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        lock(&self.map).remove(key)
    }

    /// The value under `key`.
    pub(crate) fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        lock(&self.map).get(key).cloned()
    }

    /// The first value (in key order) matching `pred`.
    pub(crate) fn find(&self, pred: impl Fn(&V) -> bool) -> Option<V> {
        lock(&self.map).values().find(|v| pred(v)).cloned()
    }

    /// Whether any value matches `pred`.
    pub(crate) fn any(&self, pred: impl Fn(&V) -> bool) -> bool {
        lock(&self.map).values().any(pred)
    }

    /// Every value, in key order.
    pub(crate) fn values(&self) -> Vec<V> {
        lock(&self.map).values().cloned().collect()
    }
}
