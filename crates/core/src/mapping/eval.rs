//! Evaluating compiled rules against a user document.
//!
//! A path *yields nothing* when it matches nothing, matches only `null`s, or every value it
//! matches is unusable for the field after the transforms (empty text, an object where text is
//! expected, ...). Then the next path of the rule is tried. The hot path allocates only for the
//! values it returns; the diagnostics in [`explain`] are computed only when a required field is
//! missing.

use std::borrow::Cow;

use serde_json::Value;

use super::rules::{Kind, Rule, Transform, describe_type};

/// The first usable text value of the first path that yields one. `buf` is scratch space.
pub(crate) fn eval_text<'a>(
    rule: &Rule,
    doc: &'a Value,
    buf: &mut Vec<&'a Value>,
) -> Option<String> {
    for path in rule.paths.iter() {
        if path.select_into(doc, buf).is_err() {
            continue;
        }
        if let Some(v) = flatten(buf).find_map(|v| text_of(v, &rule.transforms)) {
            return Some(v);
        }
    }
    None
}

/// All usable text values of the first path that yields at least one.
pub(crate) fn eval_text_list<'a>(
    rule: &Rule,
    doc: &'a Value,
    buf: &mut Vec<&'a Value>,
) -> Option<Vec<String>> {
    for path in rule.paths.iter() {
        if path.select_into(doc, buf).is_err() {
            continue;
        }
        let out: Vec<String> = flatten(buf)
            .filter_map(|v| text_of(v, &rule.transforms))
            .collect();
        if !out.is_empty() {
            return Some(out);
        }
    }
    None
}

/// The first usable true/false value of the first path that yields one.
pub(crate) fn eval_bool<'a>(rule: &Rule, doc: &'a Value, buf: &mut Vec<&'a Value>) -> Option<bool> {
    for path in rule.paths.iter() {
        if path.select_into(doc, buf).is_err() {
            continue;
        }
        if let Some(b) = buf.iter().find_map(|v| bool_of(v, rule)) {
            return Some(b);
        }
    }
    None
}

/// An extra field: one JSON value (or, with `many`, a non-empty list of them).
pub(crate) fn eval_json<'a>(
    rule: &Rule,
    doc: &'a Value,
    buf: &mut Vec<&'a Value>,
) -> Option<Value> {
    for path in rule.paths.iter() {
        if path.select_into(doc, buf).is_err() {
            continue;
        }
        let found = if rule.matches.is_some() {
            buf.iter().find_map(|v| bool_of(v, rule).map(Value::Bool))
        } else if rule.many {
            let out: Vec<Value> = flatten(buf)
                .filter_map(|v| transform_value(v, &rule.transforms))
                .collect();
            (!out.is_empty()).then_some(Value::Array(out))
        } else {
            buf.iter()
                .find_map(|v| transform_value(v, &rule.transforms))
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

/// Describes, path by path, why a rule yielded nothing: "`$.a` (no match), `$.b` (null)".
pub(crate) fn explain(rule: &Rule, kind: Kind, doc: &Value) -> String {
    let mut parts = Vec::with_capacity(rule.paths.len());
    let mut buf = Vec::new();
    for path in rule.paths.iter() {
        let why = match path.select_into(doc, &mut buf).map(|()| &buf) {
            Err(e) => format!("evaluation error: {e}"),
            Ok(values) if values.is_empty() => "no match".to_string(),
            Ok(values) if values.iter().all(|v| v.is_null()) => "null".to_string(),
            Ok(values) => {
                let first = values.iter().find(|v| !v.is_null()).copied();
                match (kind, first) {
                    (Kind::Text | Kind::TextList, Some(Value::String(_))) => {
                        "empty text after transforms".to_string()
                    }
                    (Kind::Text | Kind::TextList, Some(Value::Array(_))) => {
                        "a list without usable text or numbers".to_string()
                    }
                    (Kind::Text | Kind::TextList, Some(v)) => {
                        format!("{}, not text", describe_type(v))
                    }
                    (Kind::Bool, Some(v)) => {
                        format!("{}, not true/false", describe_type(v))
                    }
                    (Kind::Json, _) => "only empty values after transforms".to_string(),
                    (_, None) => "null".to_string(),
                }
            }
        };
        parts.push(format!("`{}` ({why})", path.as_str()));
    }
    parts.join(", ")
}

/// The selected values with lists opened one level, so `$.ids` and `$.ids[*]` behave alike.
fn flatten<'s, 'a>(values: &'s [&'a Value]) -> impl Iterator<Item = &'a Value> + 's {
    values.iter().flat_map(|v| match v {
        Value::Array(items) => Either::Many(items.iter()),
        other => Either::One(std::iter::once(*other)),
    })
}

enum Either<A, B> {
    Many(A),
    One(B),
}

impl<'a, A, B> Iterator for Either<A, B>
where
    A: Iterator<Item = &'a Value>,
    B: Iterator<Item = &'a Value>,
{
    type Item = &'a Value;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Either::Many(a) => a.next(),
            Either::One(b) => b.next(),
        }
    }
}

/// Text for a text field: strings trimmed, numbers as decimal text; anything else, and text
/// that is empty (or only whitespace) after the transforms, is absent.
fn text_of(v: &Value, transforms: &[Transform]) -> Option<String> {
    let mut s: Cow<'_, str> = match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Number(n) => Cow::Owned(n.to_string()),
        _ => return None,
    };
    for t in transforms {
        s = match t {
            Transform::Trim => trim(s),
            Transform::Lowercase => lowercase(s),
            Transform::StripCountryCode => strip_country_code(s),
            // Numbers are already text here, and empty text is always absent.
            Transform::NumberToString | Transform::EmptyToNone => s,
        };
    }
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// True/false: JSON booleans, the text `true`/`false`, the numbers 0/1; with `matches`, whether
/// the value matches.
fn bool_of(v: &Value, rule: &Rule) -> Option<bool> {
    let v = transform_value_cow(v, &rule.transforms)?;
    if let Some(pattern) = &rule.matches {
        return Some(matches(&v, pattern));
    }
    match &*v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::Number(n) => match n.as_u64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// `value` matches `pattern` when they are equal (numbers compared by value), or, for a map
/// pattern, when `value` is a map holding every key of `pattern` with a matching value.
pub(crate) fn matches(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| matches(vv, pv))),
        (Value::Array(v), Value::Array(p)) => {
            v.len() == p.len() && v.iter().zip(p).all(|(a, b)| matches(a, b))
        }
        (Value::Number(a), Value::Number(b)) => {
            match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
                (Some(x), Some(y), _, _) => x == y,
                (_, _, Some(x), Some(y)) => x == y,
                _ => match (a.as_f64(), b.as_f64()) {
                    (Some(x), Some(y)) => x == y,
                    _ => false,
                },
            }
        }
        _ => value == pattern,
    }
}

/// An extra field's value after the transforms; `null` and (with `empty_to_none`) empties are
/// absent.
fn transform_value(v: &Value, transforms: &[Transform]) -> Option<Value> {
    transform_value_cow(v, transforms).map(Cow::into_owned)
}

fn transform_value_cow<'a>(v: &'a Value, transforms: &[Transform]) -> Option<Cow<'a, Value>> {
    if v.is_null() {
        return None;
    }
    let mut cur = Cow::Borrowed(v);
    for t in transforms {
        let replacement = match (t, &*cur) {
            (Transform::EmptyToNone, value) if is_empty(value) => return None,
            (Transform::NumberToString, Value::Number(n)) => Some(Value::String(n.to_string())),
            (Transform::Trim, Value::String(s)) => changed(s, trim(Cow::Borrowed(s))),
            (Transform::Lowercase, Value::String(s)) => changed(s, lowercase(Cow::Borrowed(s))),
            (Transform::StripCountryCode, Value::String(s)) => {
                changed(s, strip_country_code(Cow::Borrowed(s)))
            }
            _ => None,
        };
        if let Some(value) = replacement {
            cur = Cow::Owned(value);
        }
    }
    Some(cur)
}

/// The new value of a string transform, or `None` when it changed nothing (so unchanged values
/// are not cloned).
fn changed(before: &str, after: Cow<'_, str>) -> Option<Value> {
    (after != before).then(|| Value::String(after.into_owned()))
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn trim(s: Cow<'_, str>) -> Cow<'_, str> {
    match s {
        Cow::Borrowed(b) => Cow::Borrowed(b.trim()),
        Cow::Owned(o) => {
            let t = o.trim();
            if t.len() == o.len() {
                Cow::Owned(o)
            } else {
                Cow::Owned(t.to_string())
            }
        }
    }
}

fn lowercase(s: Cow<'_, str>) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        s
    }
}

/// Removes a mainland-China country code written as `+86`, `0086` or `86-` (optionally followed
/// by a space or `-`) from the front of a phone number. Anything else is left alone, including a
/// bare `86…` (which could be part of a local number) and other countries' codes.
pub(crate) fn strip_country_code(s: Cow<'_, str>) -> Cow<'_, str> {
    let t = s.trim_start();
    let rest = if let Some(r) = t.strip_prefix("+86").or_else(|| t.strip_prefix("0086")) {
        r.strip_prefix([' ', '-']).unwrap_or(r)
    } else if let Some(r) = t.strip_prefix("86-") {
        r
    } else {
        return s;
    };
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return s;
    }
    match s {
        Cow::Borrowed(b) => {
            let start = b.len() - rest.len();
            Cow::Borrowed(&b[start..])
        }
        Cow::Owned(_) => Cow::Owned(rest.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_only_chinese_country_codes() {
        let cases = [
            ("+8613800000000", "13800000000"),
            ("008613800000000", "13800000000"),
            ("+86 13800000000", "13800000000"),
            ("+86-13800000000", "13800000000"),
            ("86-13800000000", "13800000000"),
            ("13800000000", "13800000000"),
            ("8613800000000", "8613800000000"),
            ("+1-5550100", "+1-5550100"),
            ("+86", "+86"),
            ("+86abc", "+86abc"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(strip_country_code(Cow::Borrowed(input)), want, "{input}");
            assert_eq!(
                strip_country_code(Cow::Owned(input.to_string())),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn text_conversion_and_transforms() {
        use Transform::*;
        assert_eq!(text_of(&json!("a"), &[]), Some("a".into()));
        assert_eq!(text_of(&json!(100), &[]), Some("100".into()));
        assert_eq!(text_of(&json!(-1.5), &[]), Some("-1.5".into()));
        assert_eq!(text_of(&json!(""), &[]), None);
        assert_eq!(text_of(&json!("  "), &[]), None);
        assert_eq!(text_of(&json!(" a "), &[]), Some("a".into()));
        assert_eq!(text_of(&json!("  "), &[Trim]), None);
        assert_eq!(
            text_of(&json!(" A@B.com "), &[Trim, Lowercase]),
            Some("a@b.com".into())
        );
        assert_eq!(text_of(&json!(true), &[]), None);
        assert_eq!(text_of(&json!({"a": 1}), &[]), None);
        assert_eq!(text_of(&Value::Null, &[]), None);
    }

    #[test]
    fn value_transforms() {
        use Transform::*;
        assert_eq!(
            transform_value(&json!(5), &[NumberToString]),
            Some(json!("5"))
        );
        assert_eq!(transform_value(&json!([]), &[EmptyToNone]), None);
        assert_eq!(transform_value(&json!({}), &[EmptyToNone]), None);
        assert_eq!(transform_value(&json!(" "), &[Trim, EmptyToNone]), None);
        assert_eq!(
            transform_value(&json!(" "), &[EmptyToNone, Trim]),
            Some(json!(""))
        );
        assert_eq!(transform_value(&json!([]), &[]), Some(json!([])));
        assert_eq!(
            transform_value(&json!(true), &[Lowercase, Trim]),
            Some(json!(true))
        );
        assert_eq!(transform_value(&Value::Null, &[]), None);
        assert_eq!(
            transform_value(&json!("+8613800000000"), &[StripCountryCode]),
            Some(json!("13800000000"))
        );
    }

    #[test]
    fn matching() {
        assert!(matches(&json!(1), &json!(1)));
        assert!(matches(&json!(1), &json!(1.0)));
        assert!(!matches(&json!(2), &json!(1)));
        assert!(!matches(&json!("1"), &json!(1)));
        let status = json!({"is_activated": true, "is_frozen": false, "is_unjoin": false});
        assert!(matches(
            &status,
            &json!({"is_activated": true, "is_frozen": false})
        ));
        assert!(!matches(
            &status,
            &json!({"is_activated": true, "is_resigned": false})
        ));
        assert!(!matches(&json!([1, 2]), &json!([1])));
        assert!(matches(
            &json!([1, {"a": 1, "b": 2}]),
            &json!([1, {"a": 1}])
        ));
    }
}
