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

use axum::Json;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unilogin::jsapi::{MAX_PAGE_URL_LEN, PageUrl};
use unilogin::{Error, Prepared, TicketKind};

use super::{Target, no_store};
use crate::app::Gateway;
use crate::error::ApiError;
use axum::extract::State;

/// How long after one invalidation of a ticket another report is ignored.
pub const REJECTION_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(300);

/// Most JSAPI names in `apis`.
pub const MAX_APIS: usize = 64;
/// Longest JSAPI name in `apis`.
pub const MAX_API_NAME_LEN: usize = 64;

/// Query of the JSAPI configuration endpoint.
#[derive(Debug, Deserialize)]
pub struct JsapiQuery {
    /// The page's URL (`location.href` without its fragment), percent-encoded in the query.
    pub url: Option<String>,
    /// `jsapi` (default: `dd.config`, `h5sdk.config`, `wx.config`) or `agent_config`
    /// (WeCom `wx.agentConfig`).
    pub kind: Option<String>,
    /// Comma-separated JSAPI names for `jsApiList` (letters, digits, `.` and `_`).
    pub apis: Option<String>,
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
    fn page(&self, raw: &str, p: &Prepared) -> Result<PageUrl, ApiError> {
        let url = PageUrl::parse(raw).map_err(page_url_error)?;
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

/// `GET /auth/{tenant}/{platform}/jsapi-config`.
pub async fn jsapi_config(
    target: Target,
    query: Result<Query<JsapiQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let p = &target.prepared;
    let allowed = match AllowedOrigins::of(p) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let mut response = match sign(p, &allowed, query).await {
        Ok(config) => no_store(Json(config).into_response()),
        Err(e) => e.into_response(),
    };
    cors(&mut response, &allowed, &headers);
    response
}

/// `Access-Control-Allow-Origin` for an allowed `Origin` only, and `Vary: Origin` always.
fn cors(response: &mut Response, allowed: &AllowedOrigins, headers: &HeaderMap) {
    let h = response.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("origin"));
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if let Some(origin) = origin.filter(|o| allowed.allows(o))
        && let Ok(v) = HeaderValue::from_str(origin)
    {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
}

async fn sign(
    p: &Prepared,
    allowed: &AllowedOrigins,
    query: Result<Query<JsapiQuery>, QueryRejection>,
) -> Result<serde_json::Value, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
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
    let url = allowed.page(&raw, p)?;
    let signed = p
        .jsapi_config(url.as_str(), kind, &apis)
        .await
        .map_err(page_url_error)?;
    tracing::debug!(page = %url, kind = %kind, "jsapi-config signed");
    Ok(signed.config)
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
    cors(&mut response, &allowed, &headers);
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
    let url = allowed.page(&report.url, p)?;
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
    let names: Vec<&str> = list.split(',').collect();
    if names.len() > MAX_APIS {
        return Err(ApiError::bad_request(
            "bad_request",
            format!("`apis` lists at most {MAX_APIS} names"),
        ));
    }
    let plausible = |n: &&str| {
        !n.is_empty()
            && n.len() <= MAX_API_NAME_LEN
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
    };
    if !names.iter().all(plausible) {
        return Err(ApiError::bad_request(
            "bad_request",
            format!(
                "`apis` is a comma-separated list of JSAPI names of 1 to {MAX_API_NAME_LEN} \
                 characters from `A-Z a-z 0-9 . _`"
            ),
        ));
    }
    Ok(names.into_iter().map(str::to_owned).collect())
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
