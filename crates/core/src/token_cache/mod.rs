//! App access-token cache: L1 memory, L2 pluggable shared store, one refresh at a time.
