//! Reading platform envelopes: the pieces every platform crate needs to turn a JSON body into
//! either its payload or a classified [`Error`].
//!
//! Platforms decide success from a numeric code in the body (`errcode` on DingTalk `oapi` and
//! WeCom, `code` on Feishu), never from the message text, and put error details in the body
//! even on non-2xx statuses. [`check_code`] does exactly that; the field readers turn ids that
//! arrive as numbers into strings and treat `""` and `null` as absent.

use std::time::Duration;

use serde_json::Value;

use crate::error::{BadBody, Error, ErrorClass, Result, UpstreamCode, UpstreamCtx, redact_excerpt};
use crate::http::UpstreamResponse;

/// Reads a numeric code that may arrive as a number or a numeric string.
pub fn numeric(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The string at a JSON pointer (`/result/userid`); numbers become strings, `""`/`null` are
/// absent.
///
/// ```
/// use unilogin_core::envelope::str_at;
/// let v = serde_json::json!({"result": {"userid": "u1", "dept": 7, "empty": ""}});
/// assert_eq!(str_at(&v, "/result/userid").as_deref(), Some("u1"));
/// assert_eq!(str_at(&v, "/result/dept").as_deref(), Some("7"));
/// assert_eq!(str_at(&v, "/result/empty"), None);
/// ```
pub fn str_at(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Like [`str_at`], but a missing value is a [`BadBody::Malformed`] response error.
pub fn require_str(
    ctx: &UpstreamCtx,
    response: &UpstreamResponse,
    pointer: &str,
) -> Result<String> {
    str_at(&response.body, pointer).ok_or_else(|| Error::BadResponse {
        ctx: ctx.clone(),
        status: response.status,
        kind: BadBody::Malformed,
        excerpt: format!(
            "missing `{pointer}` in {}",
            redact_excerpt(&response.body.to_string())
        ),
    })
}

/// A [`BadBody::Malformed`] response error: `response` lacks something the platform always
/// sends (`what`, e.g. "missing `/data/user`").
///
/// ```
/// use unilogin_core::envelope::malformed;
/// use unilogin_core::http::UpstreamResponse;
/// use unilogin_core::{Error, PlatformName, UpstreamCtx};
/// let ctx = UpstreamCtx::new(None, PlatformName::new("x").unwrap(), "user/get");
/// let r = UpstreamResponse { status: 200, headers: Default::default(), body: serde_json::json!({}) };
/// assert!(matches!(malformed(&ctx, &r, "missing `/data`"), Error::BadResponse { status: 200, .. }));
/// ```
pub fn malformed(ctx: &UpstreamCtx, response: &UpstreamResponse, what: &str) -> Error {
    Error::BadResponse {
        ctx: ctx.clone(),
        status: response.status,
        kind: BadBody::Malformed,
        excerpt: what.into(),
    }
}

/// A lifetime in seconds at a JSON pointer (number or numeric string), if positive.
pub fn seconds_at(value: &Value, pointer: &str) -> Option<Duration> {
    value
        .pointer(pointer)
        .and_then(numeric)
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s as u64))
}

/// Checks a numeric-code envelope: `code_pointer` (e.g. `/errcode`) must be `0`. A missing code
/// is success on a 2xx status and an HTTP-status error otherwise. A non-zero code becomes the
/// error of its class, carrying the message at `message_pointer`.
pub fn check_code(
    ctx: &UpstreamCtx,
    response: &UpstreamResponse,
    code_pointer: &str,
    message_pointer: &str,
    classify: impl Fn(&UpstreamCode) -> ErrorClass,
    retry_after: Option<Duration>,
) -> Result<()> {
    if !response.body.is_object() {
        return Err(Error::BadResponse {
            ctx: ctx.clone(),
            status: response.status,
            kind: BadBody::Malformed,
            excerpt: redact_excerpt(&response.body.to_string()),
        });
    }
    let code = match response.body.pointer(code_pointer) {
        Some(v) => match numeric(v) {
            Some(0) => return Ok(()),
            Some(n) => UpstreamCode::Number(n),
            None => {
                return Err(Error::BadResponse {
                    ctx: ctx.clone(),
                    status: response.status,
                    kind: BadBody::Malformed,
                    excerpt: format!("`{code_pointer}` is not a number"),
                });
            }
        },
        None if response.is_success() => return Ok(()),
        None => UpstreamCode::Http(response.status),
    };
    Err(fail(
        ctx,
        &classify(&code),
        code,
        message_at(&response.body, message_pointer),
        retry_after,
    ))
}

/// The message at a pointer, or `""`.
pub fn message_at(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Builds the error of a class (a shorthand for [`Error::from_class`]).
pub fn fail(
    ctx: &UpstreamCtx,
    class: &ErrorClass,
    code: UpstreamCode,
    message: impl Into<String>,
    retry_after: Option<Duration>,
) -> Error {
    Error::from_class(class.clone(), ctx.clone(), code, message, retry_after)
}

/// The class of an HTTP status without a usable code: 429 rate limited, 5xx transient.
pub fn class_of_status(status: u16) -> ErrorClass {
    match status {
        429 => ErrorClass::RateLimited,
        500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PlatformName;

    fn ctx() -> UpstreamCtx {
        UpstreamCtx::new(None, PlatformName::new("t").unwrap(), "ep")
    }

    fn resp(status: u16, body: Value) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: Default::default(),
            body,
        }
    }

    fn classify(code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Number(40014) => ErrorClass::TokenInvalid,
            UpstreamCode::Http(s) => class_of_status(*s),
            _ => ErrorClass::Other,
        }
    }

    #[test]
    fn codes() {
        let ok = resp(200, serde_json::json!({"errcode": 0}));
        assert!(check_code(&ctx(), &ok, "/errcode", "/errmsg", classify, None).is_ok());
        let ok_str = resp(200, serde_json::json!({"errcode": "0"}));
        assert!(check_code(&ctx(), &ok_str, "/errcode", "/errmsg", classify, None).is_ok());
        let bad = resp(
            200,
            serde_json::json!({"errcode": 40014, "errmsg": "invalid"}),
        );
        let e = check_code(&ctx(), &bad, "/errcode", "/errmsg", classify, None).unwrap_err();
        assert!(e.is_token_invalid());
        let no_code = resp(503, serde_json::json!({"message": "busy"}));
        let e = check_code(&ctx(), &no_code, "/errcode", "/errmsg", classify, None).unwrap_err();
        assert!(e.is_transient(), "{e}");
        let weird = resp(200, serde_json::json!({"errcode": {"x": 1}}));
        assert!(matches!(
            check_code(&ctx(), &weird, "/errcode", "/errmsg", classify, None),
            Err(Error::BadResponse { .. })
        ));
        let array = resp(200, serde_json::json!([1, 2]));
        assert!(check_code(&ctx(), &array, "/errcode", "/errmsg", classify, None).is_err());
    }

    #[test]
    fn fields() {
        let v = serde_json::json!({"a": {"n": 7200, "s": "7140", "z": 0, "neg": -5}});
        assert_eq!(seconds_at(&v, "/a/n"), Some(Duration::from_secs(7200)));
        assert_eq!(seconds_at(&v, "/a/s"), Some(Duration::from_secs(7140)));
        assert_eq!(seconds_at(&v, "/a/z"), None);
        assert_eq!(seconds_at(&v, "/a/neg"), None);
        let r = resp(200, v);
        let e = require_str(&ctx(), &r, "/a/missing").unwrap_err();
        assert!(e.to_string().contains("/a/missing"));
    }
}
