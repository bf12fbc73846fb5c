//! The one place the mapping engine touches a JSONPath implementation.
//!
//! Everything else in [`crate::mapping`] sees only [`CompiledPath`]: compile once from text,
//! select many times. Swapping `jsonpath_lib` for another engine means rewriting this file and
//! nothing else (the behaviour the rest of the engine relies on is pinned by the tests below and
//! by the property tests in `tests/mapping_props.rs`).

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

/// A JSONPath expression parsed once, ready to be evaluated against many documents.
///
/// Cloning is cheap (the parsed form is shared).
#[derive(Clone)]
pub(crate) struct CompiledPath {
    source: Arc<str>,
    compiled: Arc<jsonpath_lib::Compiled>,
}

impl fmt::Debug for CompiledPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CompiledPath({:?})", &*self.source)
    }
}

impl CompiledPath {
    /// Parses `source`. The error is a one-line description of what is wrong with the path.
    pub(crate) fn compile(source: &str) -> Result<Self, String> {
        let trimmed = source.trim();
        if trimmed.is_empty() {
            return Err("the path is empty".to_string());
        }
        if !trimmed.starts_with('$') {
            return Err("a path must start with `$` (the document root)".to_string());
        }
        if trimmed.len() > MAX_PATH_LEN {
            return Err(format!("the path is longer than {MAX_PATH_LEN} bytes"));
        }
        let compiled = jsonpath_lib::Compiled::compile(trimmed).map_err(|e| {
            // jsonpath_lib's message is the path followed by a caret line; keep it on one line.
            let detail = e.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("invalid JSONPath syntax ({detail})")
        })?;
        Ok(Self {
            source: Arc::from(trimmed),
            compiled: Arc::new(compiled),
        })
    }

    /// The path as written in the rules (surrounding whitespace removed).
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Every value the path selects in `doc`, in document order. A path that matches nothing
    /// yields an empty list; JSON `null`s are returned as they are (the caller treats them as
    /// absent).
    pub(crate) fn select<'a>(&self, doc: &'a Value) -> Result<Vec<&'a Value>, String> {
        self.compiled.select(doc).map_err(|e| format!("{e:?}"))
    }
}

/// Upper bound on the length of one path; real paths are a few dozen bytes.
const MAX_PATH_LEN: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, doc: &Value) -> Vec<Value> {
        CompiledPath::compile(path)
            .unwrap()
            .select(doc)
            .unwrap()
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn selects_what_the_engine_relies_on() {
        let doc = json!({
            "result": {"userid": "u1", "dept_id_list": [1, 100], "role_list": [{"name": "A"}, {"name": "B"}],
                       "n": null, "status": {"a": true, "b": false}},
            "me": {"openId": "o1"}
        });
        assert_eq!(sel("$.result.userid", &doc), vec![json!("u1")]);
        assert_eq!(sel("$.me.openId", &doc), vec![json!("o1")]);
        assert_eq!(sel("$.result.missing", &doc), Vec::<Value>::new());
        assert_eq!(sel("$.result.n", &doc), vec![Value::Null]);
        assert_eq!(sel("$.result.dept_id_list[*]", &doc), vec![json!(1), json!(100)]);
        assert_eq!(sel("$.result.dept_id_list", &doc), vec![json!([1, 100])]);
        assert_eq!(sel("$.result.role_list[*].name", &doc), vec![json!("A"), json!("B")]);
        assert_eq!(sel("$.result.role_list[?(@.name == 'B')].name", &doc), vec![json!("B")]);
        assert_eq!(sel("$['result']['userid']", &doc), vec![json!("u1")]);
        assert_eq!(sel("$.result.userid.deeper", &doc), Vec::<Value>::new());
        // A filter on an object tests the object itself.
        assert_eq!(
            sel("$.result.status[?(@.a == true)].b", &doc),
            vec![json!(false)]
        );
    }

    #[test]
    fn rejects_bad_paths_with_a_reason() {
        for (p, want) in [
            ("", "empty"),
            ("   ", "empty"),
            ("result.userid", "must start with `$`"),
            ("$.", "invalid JSONPath"),
            ("$[", "invalid JSONPath"),
            ("$.a[?(@.b ==", "invalid JSONPath"),
        ] {
            let e = CompiledPath::compile(p).unwrap_err();
            assert!(e.contains(want), "{p:?}: {e}");
            assert!(!e.contains('\n'), "multi-line reason for {p:?}: {e}");
        }
        assert!(CompiledPath::compile(&format!("$.{}", "a".repeat(2000))).is_err());
    }

    #[test]
    fn keeps_the_written_form() {
        let p = CompiledPath::compile("  $.a.b ").unwrap();
        assert_eq!(p.as_str(), "$.a.b");
        assert_eq!(format!("{p:?}"), "CompiledPath(\"$.a.b\")");
    }
}
