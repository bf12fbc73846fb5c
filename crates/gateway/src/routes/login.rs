//! `GET /auth/{tenant}/{platform}/login?return_to=…`: starts a login.
//!
//! Inside the platform's own client (by `User-Agent`), the platform's registration decides
//! ([`InClient`]): a JSAPI platform gets the H5 page, which posts the JSAPI code to
//! `POST …/code`; a platform whose client opens an OAuth link gets a redirect login with
//! [`Flow::H5`]; any other platform, and every browser outside the client, the web/QR redirect
//! login. A redirect login keeps the core's pending login (state, PKCE verifier, nonce) with the
//! return URL and a browser-binding cookie in the state store, keyed by the state.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use unilogin::user_agent::ClientInfo;
use unilogin::{Error, Flow, Prepared};
use unilogin::{InClient, JsapiLogin};
use url::Url;

use super::{Target, no_store, sandbox};
use crate::app::Gateway;
use crate::cookies::{self, Binding};
use crate::error::ApiError;
use crate::pages::{self, H5Page, H5PageConfig};
use crate::store::{PendingRecord, now_ms};

/// Longest accepted `return_to`.
const MAX_RETURN_TO_LEN: usize = 2048;

/// Query of the login endpoint.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to send the browser once signed in (exactly one of the tenant's redirect URIs;
    /// default: the first of them).
    pub return_to: Option<String>,
}

/// `GET /auth/{tenant}/{platform}/login`.
pub async fn login(
    State(gw): State<Gateway>,
    target: Target,
    query: Result<Query<LoginQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match start(&gw, &target.prepared, query, &headers).await {
        Ok(r) => r,
        Err(e) => e.html(target.html).into_response(),
    }
}

async fn start(
    gw: &Gateway,
    p: &Prepared,
    query: Result<Query<LoginQuery>, QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let candidate =
        match query.return_to {
            Some(r) if r.len() <= MAX_RETURN_TO_LEN => r,
            Some(_) => {
                return Err(Error::RedirectNotAllowed {
                    tenant: p.tenant().clone(),
                }
                .into());
            }
            None => p.config().redirect_uris.first().cloned().ok_or_else(|| {
                ApiError::bad_request("missing_return_to", "`return_to` is required")
            })?,
        };
    let return_to = p.check_return_to(&candidate)?;
    start_login(gw, p, return_to, headers).await
}

/// Starts a login for a checked `return_to` (one of the tenant's redirect URIs, or the
/// gateway's own OpenID Provider resume URL): the H5 page inside a JSAPI platform's client, a
/// redirect login otherwise.
pub(crate) async fn start_login(
    gw: &Gateway,
    p: &Prepared,
    return_to: Url,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let inside = ClientInfo::detect(ua).is_inside(p.platform().as_str());
    match (inside, &p.registration().in_client) {
        (true, InClient::Jsapi(jsapi)) => h5_page(gw, p, jsapi, &return_to),
        (true, InClient::Redirect) => redirect_login(gw, p, Flow::H5, return_to, headers).await,
        _ => redirect_login(gw, p, Flow::Web, return_to, headers).await,
    }
}

/// The H5 page: the platform's JSAPI yields the code, the page posts it to `…/code`.
fn h5_page(
    gw: &Gateway,
    p: &Prepared,
    jsapi: &JsapiLogin,
    return_to: &Url,
) -> Result<Response, ApiError> {
    let cfg = gw.config();
    let code_url = cfg
        .base_url()
        .join(&format!("auth/{}/{}/code", p.tenant(), p.platform()))
        .map_err(|e| Error::Internal(e.to_string()))?;
    let sandbox_code_url = sandbox::code_url(gw, p.platform());
    // The sandbox is offline: its pages load no SDK and get their code from the fake.
    let sdk_url = match sandbox_code_url {
        Some(_) => None,
        None => cfg.h5.sdk_url(p.platform().as_str(), jsapi.sdk_url),
    };
    let sdk_integrity = sdk_url.and(
        cfg.h5
            .sdk_integrity
            .get(p.platform().as_str())
            .map(String::as_str),
    );
    let page = H5Page {
        jsapi,
        sdk_url,
        sdk_integrity,
        config: H5PageConfig {
            platform: p.platform().to_string(),
            tenant: p.tenant().to_string(),
            global: jsapi.global.to_string(),
            params: (jsapi.params)(p.config()),
            code_url: code_url.to_string(),
            return_to: return_to.to_string(),
            sandbox_code_url,
        },
    };
    Ok(pages::h5_page(&page)?)
}

/// A redirect login: the core starts it, the gateway keeps it until the callback.
async fn redirect_login(
    gw: &Gateway,
    p: &Prepared,
    flow: Flow,
    return_to: Url,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let cfg = gw.config();
    let callback = gw.callback_url(p.tenant().as_str(), p.platform().as_str())?;
    let started = p.start_web_login(flow, &callback).await?;
    // One binding per browser: a second tab reuses the binding it already holds — if this
    // gateway issued it. A value the client made up (or a planted one from elsewhere) is
    // replaced, never adopted.
    let binding_cookie = cfg.cookies.name(&cfg.cookies.binding_name);
    let key = &gw.inner.binding_key;
    let binding = cookies::get(headers, &binding_cookie)
        .filter(|b| Binding::verify(key, b))
        .map(str::to_string)
        .unwrap_or_else(|| Binding::issue(key));
    let ttl = cfg.state_ttl();
    let store_key = Binding::store_key(key, started.pending.state.expose(), &binding);
    let record = PendingRecord {
        login: started.pending,
        return_to,
        binding,
        expires_at_ms: now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(0)),
    };
    // Kept twice as long as valid, so late and replayed callbacks are told apart from forged.
    gw.inner.states.put(&store_key, &record, ttl * 2).await?;
    let cookie = cookies::set(&cfg.cookies, &binding_cookie, &record.binding, "/", ttl)
        .ok_or_else(|| ApiError::from(Error::Internal("unusable binding cookie".into())))?;
    tracing::info!(tenant = %p.tenant(), platform = %p.platform(), %flow, "login started");
    let mut r = Redirect::to(started.url.as_str()).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(no_store(r))
}
