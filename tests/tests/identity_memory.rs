//! The identity-store behaviour suite against the core's in-memory store.

use std::sync::Arc;

use unilogin_conformance::identity::Store;
use unilogin_conformance::identity_store_suite;
use unilogin_core::identity::MemoryIdentityStore;

async fn store() -> Store {
    Arc::new(MemoryIdentityStore::new())
}

identity_store_suite!(store);
