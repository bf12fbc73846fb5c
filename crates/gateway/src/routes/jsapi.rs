//! `GET /auth/{tenant}/{platform}/jsapi-config?url=…[&kind=jsapi|agent_config][&apis=a,b,c]`:
//! the signed configuration a page inside the platform's client passes to its JS SDK
//! (`dd.config`, `h5sdk.config`, `wx.config` / `wx.agentConfig`).
//!
//! The page sends its own address, `encodeURIComponent(location.href.split('#')[0])`; the
//! gateway signs the **decoded** value exactly as received (the core removes a fragment if one
//! is still there and never re-encodes anything, see [`unilogin::jsapi`]). The URL's origin must
//! be, byte for byte, one of the origins of the tenant's redirect URIs — the same allow-list
//! `return_to` is checked against — or the answer is 403 `origin_not_allowed` before any ticket
//! is fetched: a signature for an arbitrary origin would let another site act with the app's
//! JSAPI identity.
//!
//! The answer is the platform's config object itself (JSON, `Cache-Control: no-store`); it never
//! contains the ticket. A cross-origin page may read it: `Access-Control-Allow-Origin` echoes the
//! request's `Origin` only when that origin is one the tenant allows (always with
//! `Vary: Origin`); a plain `GET` needs no preflight. The endpoint counts against the
//! `other_per_client` rate limit; the ticket itself is fetched once per app and app token
//! through the token cache (shared by replicas with Redis).
//!
//! `POST /auth/{tenant}/{platform}/jsapi-config/rejected` with `{url, nonceStr, timestamp,
//! signature[, kind]}` — the values of a configuration the platform's SDK refused — reports a
//! rejected ticket: the gateway re-signs the reported values with its current ticket and, only
//! when they match exactly (a forged or stale report changes nothing), deletes the ticket with
//! compare-and-delete ([`Prepared::invalidate_ticket`]) so the next signature uses a fresh one.
//! A ticket is invalidated at most once per [`REJECTION_COOLDOWN`] per (tenant, platform,
//! kind) across replicas (the cool-down is kept in the shared store), so a replayed report
//! cannot burn the platform's ticket quota (WeCom: 100 fetches per hour and app). The body is
//! read as JSON whatever its content type, so a page on another origin can post it as
//! `text/plain` without a preflight. Answers: `{"invalidated": true|false}`, 200.

use std::convert::Infallible;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unilogin::jsapi::{MAX_PAGE_URL_LEN, PageUrl};
use unilogin::{Error, Prepared, TicketKind};

use super::{Target, no_store};
use crate::app::Gateway;
use crate::error::ApiError;

/// How long after one invalidation of a ticket another report is ignored.
pub const REJECTION_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(300);

/// Most JSAPI names in `apis`.
pub const MAX_APIS: usize = 64;
/// Longest JSAPI name in `apis`.
pub const MAX_API_NAME_LEN: usize = 64;

/// Query of the JSAPI configuration endpoint.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct JsapiQuery {
    /// The page's URL (`location.href` without its fragment), percent-encoded in the query.
    pub url: Option<String>,
    /// `jsapi` (default: `dd.config`, `h5sdk.config`, `wx.config`) or `agent_config`
    /// (WeCom `wx.agentConfig`).
    pub kind: Option<String>,
    /// Comma-separated JSAPI names for `jsApiList` (letters, digits, `.` and `_`).
    pub apis: Option<String>,
}

impl JsapiQuery {
    /// Parses a query string (`application/x-www-form-urlencoded`, as browsers write it):
    /// `url`, `kind` and `apis` decoded, other parameters ignored, a parameter given twice
    /// refused (400 `bad_request`) — which of two values was meant is unknowable.
    ///
    /// ```
    /// use unilogin_gateway::routes::jsapi::JsapiQuery;
    /// let q = JsapiQuery::parse("url=https%3A%2F%2Fa.example%2F%3Fx%3D1&apis=a.b,c&utm=1").unwrap();
    /// assert_eq!(q.url.as_deref(), Some("https://a.example/?x=1"));
    /// assert_eq!(q.apis.as_deref(), Some("a.b,c"));
    /// assert_eq!(q.kind, None);
    /// assert_eq!(JsapiQuery::parse("url=a&url=b").unwrap_err().status, 400);
    /// ```
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let mut q = Self::default();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let (field, slot) = match &*name {
                "url" => ("url", &mut q.url),
                "kind" => ("kind", &mut q.kind),
                "apis" => ("apis", &mut q.apis),
                _ => continue,
            };
            if slot.is_some() {
                return Err(ApiError::bad_request(
                    "bad_request",
                    format!("Failed to deserialize query string: duplicate field `{field}`"),
                ));
            }
            *slot = Some(value.into_owned());
        }
        Ok(q)
    }
}

/// What `GET …/jsapi-config` reads from the request besides its target: the parsed query
/// ([`JsapiQuery::parse`], or why it was refused) and the `Origin` header — taken from the
/// request's parts without copying its header map.
#[derive(Debug)]
pub struct JsapiRequest {
    /// The query, or the 400 it earned.
    pub query: Result<JsapiQuery, ApiError>,
    /// The request's `Origin` (CORS), if any.
    pub origin: Option<HeaderValue>,
}

impl<S: Send + Sync> FromRequestParts<S> for JsapiRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self {
            query: JsapiQuery::parse(parts.uri.query().unwrap_or("")),
            origin: parts.headers.get(header::ORIGIN).cloned(),
        })
    }
}

/// The origins a tenant's pages may be signed for: those of its redirect URIs, computed once
/// per configuration revision.
struct AllowedOrigins(Vec<String>);

impl AllowedOrigins {
    fn of(p: &Prepared) -> Result<std::sync::Arc<Self>, ApiError> {
        Ok(p.compiled(|config| {
            let mut origins: Vec<String> = config
                .redirect_uris
                .iter()
                .filter_map(|u| url::Url::parse(u).ok())
                .map(|u| u.origin().ascii_serialization())
                .filter(|o| o != "null")
                .collect();
            origins.sort();
            origins.dedup();
            Ok(Self(origins))
        })?)
    }

    fn allows(&self, origin: &str) -> bool {
        self.0.iter().any(|o| o == origin)
    }

    /// Whether `url`'s origin is allowed **as written**: the parsed origin is listed and the
    /// URL's text begins with exactly that origin (so `https://APP.example:443/` — which a
    /// browser never reports — is not signed in place of `https://app.example/`).
    fn allows_page(&self, url: &PageUrl) -> bool {
        let origin = url.origin();
        self.allows(origin)
            && url
                .as_str()
                .strip_prefix(origin)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
    }

    /// `raw` as a page URL whose origin is allowed (see [`allows_page`](Self::allows_page)):
    /// 400 `invalid_page_url`, or 403 `origin_not_allowed`.
    fn page(&self, raw: String, p: &Prepared) -> Result<PageUrl, ApiError> {
        let url = PageUrl::parse_owned(raw).map_err(page_url_error)?;
        if !self.allows_page(&url) {
            tracing::info!(page = %url, tenant = %p.tenant(), "jsapi-config: origin not allowed");
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                "the page's origin is not one this tenant allows (the origins of its redirect URIs)",
            ));
        }
        Ok(url)
    }
}

/// Response headers an answer of this endpoint ends up with (its own, CORS, and the front
/// middleware's trace id and security headers), reserved at once.
const ANSWER_HEADERS: usize = 12;

/// `GET /auth/{tenant}/{platform}/jsapi-config`.
pub async fn jsapi_config(target: Target, request: JsapiRequest) -> Response {
    let p = &target.prepared;
    let allowed = match AllowedOrigins::of(p) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    // The checks first, then the core's signing awaited here (one future less to nest).
    let mut response = match checked(p, &allowed, request.query) {
        Err(e) => e.into_response(),
        Ok((url, kind, apis)) => match p.jsapi_config_for(url, kind, &apis).await {
            Ok(signed) => {
                tracing::debug!(page = %signed.signed.url, kind = %kind, "jsapi-config signed");
                json_answer(&signed.config)
            }
            Err(e) => page_url_error(e).into_response(),
        },
    };
    cors(&mut response, &allowed, request.origin.as_ref());
    response
}

/// `config` as a `no-store` JSON answer, serialised into one buffer of about its size.
fn json_answer(config: &serde_json::Value) -> Response {
    let mut body = Vec::with_capacity(384);
    if let Err(e) = serde_json::to_writer(&mut body, config) {
        // A `Value` always serialises; should that ever change, say so rather than panic.
        tracing::error!(error = %e, "jsapi-config: the config object did not serialise");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the configuration object could not be written",
        )
        .into_response();
    }
    let mut response = Response::new(axum::body::Body::from(body));
    let h = response.headers_mut();
    h.reserve(ANSWER_HEADERS);
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    no_store(response)
}

/// `Access-Control-Allow-Origin` for an allowed `Origin` only, and `Vary: Origin` always.
fn cors(response: &mut Response, allowed: &AllowedOrigins, origin: Option<&HeaderValue>) {
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    if let Some(v) = origin.filter(|v| v.to_str().is_ok_and(|o| allowed.allows(o))) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v.clone());
    }
}

/// The request's page URL (its origin allowed), ticket kind and JSAPI list, or the 400 / 403
/// it earned — all before any ticket is fetched.
fn checked(
    p: &Prepared,
    allowed: &AllowedOrigins,
    query: Result<JsapiQuery, ApiError>,
) -> Result<(PageUrl, TicketKind, Vec<String>), ApiError> {
    let query = query?;
    let raw = query.url.ok_or_else(|| {
        ApiError::bad_request(
            "missing_url",
            "`url` is required: the page's encodeURIComponent(location.href.split('#')[0])",
        )
    })?;
    if raw.len() > MAX_PAGE_URL_LEN {
        return Err(page_url_error(Error::InvalidPageUrl(
            unilogin::jsapi::PageUrlProblem::TooLong,
        )));
    }
    let kind = ticket_kind(query.kind.as_deref())?;
    let apis = parse_apis(query.apis.as_deref().unwrap_or(""))?;
    let url = allowed.page(raw, p)?;
    Ok((url, kind, apis))
}

/// Body of a rejection report: the values of the configuration the SDK refused (the names the
/// config objects use).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectionReport {
    /// The page URL that was signed.
    pub url: String,
    /// `nonceStr` of the object.
    pub nonce_str: String,
    /// `timestamp` / `timeStamp` of the object.
    #[serde(alias = "timeStamp")]
    pub timestamp: u64,
    /// `signature` of the object.
    pub signature: String,
    /// `jsapi` (default) or `agent_config`.
    #[serde(default)]
    pub kind: Option<String>,
}

/// `POST /auth/{tenant}/{platform}/jsapi-config/rejected`.
pub async fn jsapi_rejected(
    State(gw): State<Gateway>,
    target: Target,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let p = &target.prepared;
    let allowed = match AllowedOrigins::of(p) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let mut response = match rejected(&gw, &target, &allowed, &body).await {
        Ok(invalidated) => {
            no_store(Json(serde_json::json!({ "invalidated": invalidated })).into_response())
        }
        Err(e) => e.into_response(),
    };
    cors(&mut response, &allowed, headers.get(header::ORIGIN));
    response
}

async fn rejected(
    gw: &Gateway,
    target: &Target,
    allowed: &AllowedOrigins,
    body: &[u8],
) -> Result<bool, ApiError> {
    let p = &target.prepared;
    // Any content type: a page on another origin posts it as `text/plain`, which needs no
    // preflight (the report can only invalidate the current ticket, once per cool-down).
    let report: RejectionReport = serde_json::from_slice(body).map_err(|_| {
        ApiError::bad_request(
            "bad_request",
            "the body must be JSON {url, nonceStr, timestamp, signature, kind?}",
        )
    })?;
    let kind = ticket_kind(report.kind.as_deref())?;
    let url = allowed.page(report.url, p)?;
    let signed = unilogin::jsapi::Signed {
        url,
        nonce: report.nonce_str,
        timestamp: report.timestamp,
        signature: report.signature,
    };
    // Only a report that matches the current ticket may spend the cool-down.
    if !p
        .ticket_signed(kind, &signed)
        .await
        .map_err(page_url_error)?
    {
        return Ok(false);
    }
    let key = format!(
        "jsapi-rejected:{}:{}:{}",
        p.tenant(),
        p.platform(),
        kind.as_str()
    );
    let first = gw
        .inner
        .events
        .dedupe
        .first_seen(&key, REJECTION_COOLDOWN)
        .await
        .map_err(ApiError::from)?;
    if !first {
        tracing::info!(tenant = %p.tenant(), platform = %p.platform(), kind = %kind, "ticket rejection reported again within the cool-down; ignored");
        return Ok(false);
    }
    p.invalidate_ticket(kind, &signed)
        .await
        .map_err(page_url_error)
}

/// `kind=`: absent or empty means `jsapi`.
fn ticket_kind(raw: Option<&str>) -> Result<TicketKind, ApiError> {
    match raw {
        None | Some("") => Ok(TicketKind::Jsapi),
        Some(k) => TicketKind::parse(k).ok_or_else(|| {
            ApiError::bad_request("bad_request", "`kind` must be `jsapi` or `agent_config`")
        }),
    }
}

/// A library error as an HTTP error; a refused page URL is the caller's 400, with its reason.
fn page_url_error(e: Error) -> ApiError {
    match e {
        Error::InvalidPageUrl(_) => ApiError::bad_request(e.kind(), e.to_string()),
        e => e.into(),
    }
}

/// `a,b,c` → the names, each 1 to [`MAX_API_NAME_LEN`] characters of `A-Z a-z 0-9 . _`, at most
/// [`MAX_APIS`] of them. Empty: none.
pub fn parse_apis(list: &str) -> Result<Vec<String>, ApiError> {
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let count = 1 + list.bytes().filter(|&b| b == b',').count();
    if count > MAX_APIS {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("`apis` lists at most {MAX_APIS} names"),
        ));
    }
    let plausible = |n: &str| {
        !n.is_empty()
            && n.len() <= MAX_API_NAME_LEN
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
    };
    let mut names = Vec::with_capacity(count);
    for name in list.split(',') {
        if !plausible(name) {
            return Err(ApiError::bad_request(
                "bad_request",
                format!(
                    "`apis` is a comma-separated list of JSAPI names of 1 to {MAX_API_NAME_LEN} \
                     characters from `A-Z a-z 0-9 . _`"
                ),
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_lists_are_bounded_and_checked() {
        assert_eq!(parse_apis("").unwrap(), Vec::<String>::new());
        assert_eq!(
            parse_apis("biz.contact.choose,getLocation,open_chat").unwrap(),
            ["biz.contact.choose", "getLocation", "open_chat"]
        );
        for bad in ["a,,b", "a,", "a b", "a<script>", "a;b", &"x".repeat(65)] {
            assert_eq!(parse_apis(bad).unwrap_err().status, 400, "{bad}");
        }
        let many = vec!["a"; MAX_APIS + 1].join(",");
        assert!(parse_apis(&many).is_err());
        assert!(parse_apis(&vec!["a"; MAX_APIS].join(",")).is_ok());
    }

    #[test]
    fn queries_are_decoded_and_duplicates_refused() {
        let q = JsapiQuery::parse(
            "kind=agent_config&url=https%3A%2F%2Fa.example%2Fh5%3Fx%3D1%26y%3D%E4%B8%AD&apis=a,b&other=1",
        )
        .unwrap();
        assert_eq!(q.url.as_deref(), Some("https://a.example/h5?x=1&y=中"));
        assert_eq!(q.kind.as_deref(), Some("agent_config"));
        assert_eq!(q.apis.as_deref(), Some("a,b"));
        // `+` is a space in a form-encoded query; a page that encodes with
        // `encodeURIComponent` writes `%2B` for a plus.
        let q = JsapiQuery::parse("url=a+b%2Bc").unwrap();
        assert_eq!(q.url.as_deref(), Some("a b+c"));
        assert_eq!(JsapiQuery::parse("").unwrap(), JsapiQuery::default());
        for dup in ["url=a&url=a", "kind=&kind=jsapi", "apis=a&x=1&apis=b"] {
            let e = JsapiQuery::parse(dup).unwrap_err();
            assert_eq!(
                (e.status, e.kind),
                (StatusCode::BAD_REQUEST, "bad_request"),
                "{dup}"
            );
            assert!(e.message.contains("duplicate field"), "{}", e.message);
        }
    }

    #[test]
    fn queries_decode_as_form_urlencoded() {
        let q = JsapiQuery::parse("u%72l=a&&k%69nd=agent_config&=&apis").unwrap();
        assert_eq!(q.url.as_deref(), Some("a"));
        assert_eq!(q.kind.as_deref(), Some("agent_config"));
        assert_eq!(q.apis.as_deref(), Some(""));
        assert!(JsapiQuery::parse("url=a&u%72l=b").is_err());
    }

    #[test]
    fn page_origins_match_as_written() {
        let allowed = AllowedOrigins(vec![
            "https://app.example".into(),
            "http://127.0.0.1:8080".into(),
        ]);
        let ok = |u: &str| allowed.allows_page(&PageUrl::parse(u).unwrap());
        assert!(ok("https://app.example/h5/?a=1"));
        assert!(ok("https://app.example?a=1"));
        assert!(ok("http://127.0.0.1:8080/"));
        assert!(!ok("https://APP.example/h5/"));
        assert!(!ok("https://app.example:443/h5/"));
        assert!(!ok("https://app.example.evil.example/"));
        assert!(!ok("http://app.example/"));
        assert!(!ok("http://127.0.0.1:8081/"));
    }
}
