//! Mapping engine: compiled JSONPath rules (with backup paths) from YAML into [`UserProfile`]s.
