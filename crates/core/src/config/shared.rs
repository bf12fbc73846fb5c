//! Parts of configurations shared by content: host maps, mapping overrides and session scope
//! rules are usually the same for many tenants of a deployment (the same private hosts, the
//! same field overrides), so the loaders keep one `Arc` per distinct value instead of a copy
//! per tenant. Values are interned by their JSON text and held weakly: a shape no
//! configuration uses any more is freed. At most [`MAX_SHAPES`] distinct shapes per kind are
//! tracked; beyond that a value is simply not shared.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use serde_json::Value;
use url::Url;

use crate::mapping::ScopeRules;

/// The most distinct shapes tracked per kind.
pub const MAX_SHAPES: usize = 16_384;

struct Interner<T> {
    table: Mutex<HashMap<String, Weak<T>>>,
}

impl<T> Interner<T> {
    fn new() -> Self {
        Self {
            table: Mutex::new(HashMap::new()),
        }
    }

    /// The shared `Arc` of the value whose canonical text is `key`, made by `make` when there
    /// is none alive.
    fn get(&self, key: String, make: impl FnOnce() -> T) -> Arc<T> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(alive) = table.get(&key).and_then(Weak::upgrade) {
            return alive;
        }
        let value = Arc::new(make());
        if table.len() >= MAX_SHAPES {
            table.retain(|_, w| w.strong_count() > 0);
        }
        if table.len() < MAX_SHAPES {
            table.insert(key, Arc::downgrade(&value));
        }
        value
    }
}

fn hosts_table() -> &'static Interner<BTreeMap<String, Url>> {
    static T: OnceLock<Interner<BTreeMap<String, Url>>> = OnceLock::new();
    T.get_or_init(Interner::new)
}

fn values_table() -> &'static Interner<Value> {
    static T: OnceLock<Interner<Value>> = OnceLock::new();
    T.get_or_init(Interner::new)
}

fn scopes_table() -> &'static Interner<ScopeRules> {
    static T: OnceLock<Interner<ScopeRules>> = OnceLock::new();
    T.get_or_init(Interner::new)
}

/// The shared copy of a host map.
pub fn hosts(map: BTreeMap<String, Url>) -> Arc<BTreeMap<String, Url>> {
    if map.is_empty() {
        static EMPTY: OnceLock<Arc<BTreeMap<String, Url>>> = OnceLock::new();
        return EMPTY.get_or_init(Arc::default).clone();
    }
    let key: String = map
        .iter()
        .map(|(k, v)| format!("{k}\u{0}{v}\u{0}"))
        .collect();
    hosts_table().get(key, || map)
}

/// The shared copy of a JSON value (mapping overrides).
pub fn value(v: Value) -> Arc<Value> {
    values_table().get(v.to_string(), || v)
}

/// The shared copy of compiled scope rules, by the JSON text they were compiled from.
pub fn scope_rules(source: &Value, rules: ScopeRules) -> Arc<ScopeRules> {
    scopes_table().get(source.to_string(), || rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_arc_and_unused_ones_are_freed() {
        let map = |u: &str| BTreeMap::from([("api".to_string(), Url::parse(u).unwrap())]);
        let a = hosts(map("https://a.example/"));
        let b = hosts(map("https://a.example/"));
        let c = hosts(map("https://c.example/"));
        assert!(Arc::ptr_eq(&a, &b) && !Arc::ptr_eq(&a, &c));
        let weak = Arc::downgrade(&c);
        drop(c);
        assert!(
            weak.upgrade().is_none(),
            "nothing keeps an unused shape alive"
        );
        let v1 = value(serde_json::json!({"name": "$.n"}));
        let v2 = value(serde_json::json!({"name": "$.n"}));
        assert!(Arc::ptr_eq(&v1, &v2));
        assert!(Arc::ptr_eq(
            &hosts(BTreeMap::new()),
            &hosts(BTreeMap::new())
        ));
    }
}
