//! Compiled mapping rules shared by content: every configuration whose platform and mapping
//! overrides are the same gets the same compiled [`MappingRules`] (one `Arc` of compiled
//! JSONPaths), however many tenants use it.
//!
//! Many tenants of one platform use its default rules, or the same few overrides; compiling
//! them once per tenant made identical copies (most of the memory of an active tenant). The
//! platform defaults are compiled once per process; overrides are interned by their JSON text,
//! up to [`MAX_INTERNED`] distinct ones (beyond that they are compiled per call, so a
//! configuration with many distinct overrides cannot grow this table without bound).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde_json::Value;

use crate::error::Result;
use crate::mapping::MappingRules;
use crate::registry::PlatformRegistration;

/// The most distinct (platform, overrides) pairs kept.
pub const MAX_INTERNED: usize = 4096;

type Table = HashMap<(&'static str, String), MappingRules>;

fn defaults() -> &'static Mutex<HashMap<&'static str, MappingRules>> {
    static DEFAULTS: OnceLock<Mutex<HashMap<&'static str, MappingRules>>> = OnceLock::new();
    DEFAULTS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn interned() -> &'static Mutex<Table> {
    static INTERNED: OnceLock<Mutex<Table>> = OnceLock::new();
    INTERNED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The platform's default rules, compiled once per process.
fn platform_defaults(registration: &'static PlatformRegistration) -> Result<MappingRules> {
    if let Some(r) = defaults()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(registration.name)
    {
        return Ok(r.clone());
    }
    // Compiled outside the lock; a concurrent first use compiles twice and keeps one.
    let rules = MappingRules::from_yaml(registration.name, registration.default_rules)?;
    Ok(defaults()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(registration.name)
        .or_insert(rules)
        .clone())
}

/// The compiled rules of `registration` with `overrides` applied (field by field, see
/// [`MappingRules::with_overrides`]), shared with every other configuration that has the same
/// platform and overrides. Errors are those of compiling them (not cached: a fixed
/// configuration compiles afresh).
///
/// ```
/// # use unilogin_core::config::mapping_rules;
/// # use unilogin_core::registry::Registry;
/// # let Some(name) = Registry::names().first().copied() else { return };
/// let r = Registry::get(name).unwrap();
/// let a = mapping_rules(r, None).unwrap();
/// let b = mapping_rules(r, None).unwrap();
/// assert_eq!(a.platform(), b.platform());
/// ```
pub fn mapping_rules(
    registration: &'static PlatformRegistration,
    overrides: Option<&Value>,
) -> Result<MappingRules> {
    let base = platform_defaults(registration)?;
    let Some(overrides) = overrides else {
        return Ok(base);
    };
    let key = (registration.name, overrides.to_string());
    if let Some(r) = interned()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key)
    {
        return Ok(r.clone());
    }
    let rules = base.with_overrides(overrides)?;
    let mut table = interned().lock().unwrap_or_else(PoisonError::into_inner);
    if table.len() >= MAX_INTERNED && !table.contains_key(&key) {
        return Ok(rules);
    }
    Ok(table.entry(key).or_insert(rules).clone())
}

/// How many distinct (platform, overrides) pairs are interned (for tests and benchmarks).
pub fn interned_count() -> usize {
    interned()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .len()
}
