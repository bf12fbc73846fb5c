//! The one place the mapping engine touches a JSONPath implementation.
//!
//! Everything else in [`crate::mapping`] sees only [`CompiledPath`]: compile once from text,
//! select many times. Swapping `jsonpath_lib` for another engine means rewriting this file and
//! nothing else (the behaviour the rest of the engine relies on is pinned by the tests below and
//! by the property tests in `tests/mapping_props.rs`).
//!
//! `jsonpath_lib` parses and validates every path. Evaluating through it costs about 0.6 µs per
//! path on a 2 KB document (it builds a fresh selector each call), which alone would exceed the
//! 2 µs budget of an 8-field profile. Paths that are a plain chain of child steps (`.name`,
//! `['name']`, `[n]`, `[*]`, `.*`), which is what rules files use almost exclusively, are
//! therefore also lowered to [`Step`]s and walked directly; the walk returns exactly what
//! `jsonpath_lib` returns for those paths (checked by a property test below). Every other path
//! (filters, recursive descent, slices, unions, negative indexes) is evaluated by `jsonpath_lib`.

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
    /// The same path as plain child steps, when it is one.
    simple: Option<Arc<[Step]>>,
}

/// One step of a plain child-step path.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// `.name` or `['name']`: the member `name` of an object.
    Key(Box<str>),
    /// `[n]`: element `n` (from 0) of an array (on an object: of each member that is an array,
    /// as `jsonpath_lib` does).
    Index(usize),
    /// `[*]` or `.*`: every element of an array, every member value of an object.
    Wildcard,
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
            simple: parse_simple(trimmed).map(Arc::from),
        })
    }

    /// The path as written in the rules (surrounding whitespace removed).
    pub(crate) fn as_str(&self) -> &str {
        &self.source
    }

    /// Every value the path selects in `doc`, in document order. A path that matches nothing
    /// yields an empty list; JSON `null`s are returned as they are (the caller treats them as
    /// absent).
    #[cfg(test)]
    pub(crate) fn select<'a>(&self, doc: &'a Value) -> Result<Vec<&'a Value>, String> {
        let mut out = Vec::new();
        self.select_into(doc, &mut out)?;
        Ok(out)
    }

    /// Like `select`, into `out` (cleared first), so one buffer serves a whole profile.
    pub(crate) fn select_into<'a>(
        &self,
        doc: &'a Value,
        out: &mut Vec<&'a Value>,
    ) -> Result<(), String> {
        out.clear();
        match &self.simple {
            Some(steps) => {
                walk(steps, doc, out);
                Ok(())
            }
            None => {
                let selected = self.compiled.select(doc).map_err(|e| format!("{e:?}"))?;
                out.extend(selected);
                Ok(())
            }
        }
    }
}

/// Lowers `$` followed only by `.name`, `['name']`, `[n]`, `[*]` and `.*` (names made of ASCII
/// letters, digits and `_`, not starting with a digit; `n` without leading zeros) to steps.
/// Anything else returns `None` and is left to `jsonpath_lib`.
fn parse_simple(path: &str) -> Option<Vec<Step>> {
    let rest = path.strip_prefix('$')?;
    let b = rest.as_bytes();
    let is_name_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let is_name = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut steps = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => {
                if b.get(i + 1) == Some(&b'*') {
                    steps.push(Step::Wildcard);
                    i += 2;
                    continue;
                }
                let start = i + 1;
                if !b.get(start).copied().is_some_and(is_name_start) {
                    return None;
                }
                let mut end = start;
                while end < b.len() && is_name(b[end]) {
                    end += 1;
                }
                steps.push(Step::Key(rest[start..end].into()));
                i = end;
            }
            b'[' => {
                let close = i + rest[i..].find(']')?;
                let inner = &rest[i + 1..close];
                let step = if inner == "*" {
                    Step::Wildcard
                } else if let Some(name) =
                    inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\''))
                {
                    let ok =
                        name.bytes().next().is_some_and(is_name_start) && name.bytes().all(is_name);
                    if !ok {
                        return None;
                    }
                    Step::Key(name.into())
                } else {
                    let digits_ok = !inner.is_empty()
                        && inner.bytes().all(|c| c.is_ascii_digit())
                        && (inner == "0" || !inner.starts_with('0'))
                        && inner.len() <= 9;
                    if !digits_ok {
                        return None;
                    }
                    Step::Index(inner.parse().ok()?)
                };
                steps.push(step);
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

/// Appends to `out` every value `steps` select under `v`, in document order.
fn walk<'a>(steps: &[Step], v: &'a Value, out: &mut Vec<&'a Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(v);
        return;
    };
    match (step, v) {
        (Step::Key(k), Value::Object(m)) => {
            if let Some(child) = m.get(&**k) {
                walk(rest, child, out);
            }
        }
        (Step::Index(n), Value::Array(a)) => {
            if let Some(child) = a.get(*n) {
                walk(rest, child, out);
            }
        }
        // jsonpath_lib applies an index on an object to each member value that is an array.
        (Step::Index(n), Value::Object(m)) => {
            for child in m.values() {
                if let Some(item) = child.as_array().and_then(|a| a.get(*n)) {
                    walk(rest, item, out);
                }
            }
        }
        (Step::Wildcard, Value::Array(a)) => {
            for child in a {
                walk(rest, child, out);
            }
        }
        (Step::Wildcard, Value::Object(m)) => {
            for child in m.values() {
                walk(rest, child, out);
            }
        }
        _ => {}
    }
}

/// Upper bound on the length of one path; real paths are a few dozen bytes.
const MAX_PATH_LEN: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
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
        assert_eq!(
            sel("$.result.dept_id_list[*]", &doc),
            vec![json!(1), json!(100)]
        );
        assert_eq!(sel("$.result.dept_id_list", &doc), vec![json!([1, 100])]);
        assert_eq!(
            sel("$.result.role_list[*].name", &doc),
            vec![json!("A"), json!("B")]
        );
        assert_eq!(
            sel("$.result.role_list[?(@.name == 'B')].name", &doc),
            vec![json!("B")]
        );
        assert_eq!(sel("$['result']['userid']", &doc), vec![json!("u1")]);
        assert_eq!(sel("$.result.userid.deeper", &doc), Vec::<Value>::new());
        // jsonpath_lib's quirk, kept by the direct walk: an index on an object indexes each
        // member that is an array.
        let quirk = json!({"a": [null, 7], "b": "x"});
        assert_eq!(sel("$[1]", &quirk), vec![json!(7)]);
        assert_eq!(
            CompiledPath::compile("$[1]")
                .unwrap()
                .compiled
                .select(&quirk)
                .unwrap(),
            vec![&json!(7)]
        );
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
    fn plain_paths_are_lowered_and_others_are_not() {
        let k = |s: &str| Step::Key(s.into());
        assert_eq!(
            parse_simple("$.result.dept_id_list[*]"),
            Some(vec![k("result"), k("dept_id_list"), Step::Wildcard])
        );
        assert_eq!(
            parse_simple("$['a'].b_2[10].*"),
            Some(vec![k("a"), k("b_2"), Step::Index(10), Step::Wildcard])
        );
        assert_eq!(parse_simple("$"), Some(vec![]));
        for other in [
            "$..a",
            "$.a[-1]",
            "$.a[0:2]",
            "$.a[0,1]",
            "$.a[?(@.b)]",
            "$.1a",
            "$['a b']",
            "$[\"a\"]",
            "$.a[01]",
            "$.a-b",
            "$.",
            "$.a[",
            "$.a[]",
        ] {
            assert_eq!(parse_simple(other), None, "{other}");
        }
    }

    fn arb_doc() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0u8..4).prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(
                    (prop_oneof!["a", "b", "c", "length", "_x", "0"], inner),
                    0..5
                )
                .prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    fn arb_plain_path() -> impl Strategy<Value = String> {
        let step = prop_oneof![
            prop_oneof!["a", "b", "c", "length", "_x"].prop_map(|k| format!(".{k}")),
            prop_oneof!["a", "b", "_x"].prop_map(|k| format!("['{k}']")),
            (0usize..4).prop_map(|n| format!("[{n}]")),
            Just("[*]".to_string()),
            Just(".*".to_string()),
        ];
        prop::collection::vec(step, 0..5).prop_map(|steps| format!("${}", steps.concat()))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The direct walk returns exactly what `jsonpath_lib` returns.
        #[test]
        fn walk_agrees_with_jsonpath_lib(path in arb_plain_path(), doc in arb_doc()) {
            let compiled = CompiledPath::compile(&path).unwrap();
            prop_assert!(compiled.simple.is_some(), "{} not lowered", path);
            let fast = compiled.select(&doc).unwrap();
            let reference = compiled.compiled.select(&doc).unwrap();
            prop_assert_eq!(fast, reference, "{}", path);
        }
    }

    #[test]
    fn keeps_the_written_form() {
        let p = CompiledPath::compile("  $.a.b ").unwrap();
        assert_eq!(p.as_str(), "$.a.b");
        assert_eq!(format!("{p:?}"), "CompiledPath(\"$.a.b\")");
    }
}
