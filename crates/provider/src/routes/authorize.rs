//! `GET|POST /oidc/authorize` and `GET /oidc/resume`: the authorization code flow
//! (OIDC Core §3.1.2, RFC 6749 §4.1, RFC 7636, RFC 9207).
//!
//! Validation runs in the order of OIDC Core §3.1.2.2: first the client and its redirect URI
//! — when either is wrong the browser sees an error page and is **never** redirected (an
//! open redirector otherwise) — then everything else, answered by a redirect to the client
//! with `error`, `state` and `iss`.
//!
//! - `response_type` must be `code`; `response_mode` `query` (or absent).
//! - `scope` must contain `openid`; scopes the provider does not know or the client may not
//!   have are dropped, or refused with `invalid_scope` when the client has `strict_scopes`.
//! - PKCE: `S256` only (`plain` is refused), required for public clients and clients with
//!   `require_pkce`.
//! - `prompt`: `none` (no usable session → `login_required`), `login` (a fresh login: the
//!   resumed request must see an `auth_time` after the request began), `consent` and
//!   `select_account` are accepted: the gateway's clients are first-party applications the
//!   organisation configured, so they count as consented and no consent screen exists
//!   (`consent_required` is never needed, even with `prompt=none`).
//! - `max_age`: a session older than that logs in again; the id token then has `auth_time`
//!   (it always has).
//! - `login_hint`: space-separated selectors `platform:NAME` (the platform to log in with,
//!   skipping the chooser) and `tenant:ID` (one of the client's tenants; default its first);
//!   anything else is passed to the host as the hint.
//! - `ui_locales`, `display`, `claims_locales`, `acr_values`, `id_token_hint` are accepted
//!   and ignored; `request` and `request_uri` are refused (`request_not_supported`,
//!   `request_uri_not_supported`).

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use unilogin_core::{PlatformName, TenantId};
use url::Url;

use super::{Params, error_page, is_form, no_store};
use crate::claims::{SUPPORTED_SCOPES, client_sub, profile_claims};
use crate::client::{Client, GrantType};
use crate::error::ProviderError;
use crate::host::{Authenticated, LoginRequest};
use crate::provider::unix_ms;
use crate::provider::{Provider, now, unix};
use crate::secret::{new_secret, random_token, sha256_hex};
use crate::store::{CodeGrant, Grant, PendingAuthorization};

/// `GET /oidc/authorize`.
pub(crate) async fn authorize_get(
    State(p): State<Provider>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(&p, query.as_deref().unwrap_or(""), headers).await
}

/// `POST /oidc/authorize` (form body, OIDC Core §3.1.2.1).
pub(crate) async fn authorize_post(
    State(p): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("the body must be a form".into()),
        );
    }
    match std::str::from_utf8(&body) {
        Ok(text) => authorize(&p, text, headers).await,
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("the body is not UTF-8".into()),
        ),
    }
}

/// Where errors go once the client and its redirect URI are known.
struct Reply<'a> {
    provider: &'a Provider,
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

impl Reply<'_> {
    /// `redirect_uri?error=…&error_description=…&state=…&iss=…`.
    fn error(&self, e: &ProviderError) -> Response {
        if e.is_internal() {
            tracing::warn!(error = %e, "authorization request failed");
        }
        self.redirect(&[
            ("error", e.code()),
            ("error_description", e.public_description()),
        ])
    }

    /// An error code outside [`ProviderError`] (`request_not_supported`, …).
    fn error_code(&self, code: &str) -> Response {
        self.redirect(&[("error", code)])
    }

    fn redirect(&self, pairs: &[(&str, &str)]) -> Response {
        redirect_to(self.provider, self.redirect_uri, pairs, self.state)
    }
}

fn redirect_to(
    provider: &Provider,
    redirect_uri: &str,
    pairs: &[(&str, &str)],
    state: Option<&str>,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("redirect_uri is not a URL".into()),
        );
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", provider.issuer());
    }
    no_store(Redirect::to(url.as_str()).into_response())
}

/// The parsed `prompt`.
#[derive(Default)]
struct Prompt {
    none: bool,
    login: bool,
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, ProviderError> {
    let mut p = Prompt::default();
    let mut count = 0;
    for v in value.unwrap_or("").split_ascii_whitespace() {
        count += 1;
        match v {
            "none" => p.none = true,
            "login" => p.login = true,
            "consent" | "select_account" => {}
            _ => {
                return Err(ProviderError::InvalidRequest(format!(
                    "unknown prompt value {v:?}"
                )));
            }
        }
    }
    if p.none && count > 1 {
        return Err(ProviderError::InvalidRequest(
            "prompt=none cannot be combined with other values".into(),
        ));
    }
    Ok(p)
}

/// Whether `s` is a valid PKCE challenge or verifier: 43 to 128 unreserved characters
/// (RFC 7636 §4.1, §4.2).
pub(crate) fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn authorize(p: &Provider, text: &str, headers: HeaderMap) -> Response {
    let params = match Params::parse(text) {
        Ok(params) => params,
        // A repeated client_id or redirect_uri cannot be trusted to redirect to.
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let Some(client_id) = params.get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("client_id is missing".into()),
        );
    };
    let Some(client) = p.inner.clients.client(client_id) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("unknown client".into()),
        );
    };
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("redirect_uri is missing".into()),
        );
    };
    if !client.allows_redirect(redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("redirect_uri is not registered for this client".into()),
        );
    }
    let reply = Reply {
        provider: p,
        redirect_uri,
        state: params.get("state"),
    };
    if params.get("request").is_some() {
        return reply.error_code("request_not_supported");
    }
    if params.get("request_uri").is_some() {
        return reply.error_code("request_uri_not_supported");
    }
    match validate(&client, &params, redirect_uri) {
        Ok(pending) => match continue_flow(p, &client, pending, &params, headers).await {
            Ok(r) => r,
            Err(e) => reply.error(&e),
        },
        Err(e) => reply.error(&e),
    }
}

/// Everything after the client and redirect URI, into the pending request.
fn validate(
    client: &Client,
    params: &Params,
    redirect_uri: &str,
) -> Result<PendingAuthorization, ProviderError> {
    match params.get("response_type") {
        None => {
            return Err(ProviderError::InvalidRequest(
                "response_type is missing".into(),
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(ProviderError::UnsupportedResponseType(
                "only response_type=code is supported".into(),
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(ProviderError::UnauthorizedClient(
            "the client may not use the authorization code flow".into(),
        ));
    }
    match params.get("response_mode") {
        None | Some("query") => {}
        Some(_) => {
            return Err(ProviderError::InvalidRequest(
                "only response_mode=query is supported".into(),
            ));
        }
    }
    let requested: Vec<&str> = params
        .get("scope")
        .unwrap_or("")
        .split_ascii_whitespace()
        .collect();
    if !requested.contains(&"openid") {
        return Err(ProviderError::InvalidScope(
            "the scope must contain openid".into(),
        ));
    }
    let mut scopes: Vec<String> = Vec::new();
    for s in requested {
        let known = SUPPORTED_SCOPES.contains(&s) && client.allows_scope(s);
        if !known {
            if client.strict_scopes {
                return Err(ProviderError::InvalidScope(format!(
                    "scope {s:?} is not allowed"
                )));
            }
            continue;
        }
        if !scopes.iter().any(|x| x == s) {
            scopes.push(s.to_string());
        }
    }
    let challenge = params.get("code_challenge");
    match (challenge, params.get("code_challenge_method")) {
        (Some(c), None | Some("S256")) => {
            if !is_pkce_value(c) {
                return Err(ProviderError::InvalidRequest(
                    "code_challenge is not 43 to 128 unreserved characters".into(),
                ));
            }
            // RFC 7636 §4.3: the default method is plain, which is refused.
            if params.get("code_challenge_method").is_none() {
                return Err(ProviderError::InvalidRequest(
                    "code_challenge_method must be S256 (plain is not supported)".into(),
                ));
            }
        }
        (Some(_), Some(_)) => {
            return Err(ProviderError::InvalidRequest(
                "code_challenge_method must be S256 (plain is not supported)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ProviderError::InvalidRequest(
                "code_challenge_method without code_challenge".into(),
            ));
        }
        (None, None) if client.pkce_required() => {
            return Err(ProviderError::InvalidRequest(
                "PKCE (code_challenge with S256) is required for this client".into(),
            ));
        }
        (None, None) => {}
    }
    let prompt = parse_prompt(params.get("prompt"))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ProviderError::InvalidRequest("max_age is not a non-negative integer".into())
        })?),
    };
    if params.get("nonce").is_some_and(|n| n.len() > 512) {
        return Err(ProviderError::InvalidRequest("nonce is too long".into()));
    }
    let (tenant, platform, _) = parse_hint(client, params.get("login_hint"))?;
    let started = unix_ms(SystemTime::now());
    Ok(PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        scopes,
        state: params.get("state").map(str::to_string),
        nonce: params.get("nonce").map(str::to_string),
        code_challenge: challenge.map(str::to_string),
        tenant: tenant.as_str().to_string(),
        platform: platform.map(|p| p.as_str().to_string()),
        max_age,
        fresh_after_ms: prompt.login.then_some(started),
        require_auth_time: max_age.is_some(),
    })
}

/// `login_hint` → (tenant, platform, the rest of the hint).
fn parse_hint(
    client: &Client,
    hint: Option<&str>,
) -> Result<(TenantId, Option<PlatformName>, Option<String>), ProviderError> {
    let mut tenant = client.tenants[0].clone();
    let mut platform = None;
    let mut rest = Vec::new();
    for part in hint.unwrap_or("").split_ascii_whitespace() {
        if let Some(name) = part.strip_prefix("platform:") {
            platform = PlatformName::new(name).ok();
        } else if let Some(id) = part.strip_prefix("tenant:") {
            let t = TenantId::new(id)
                .ok()
                .filter(|t| client.allows_tenant(t))
                .ok_or_else(|| {
                    ProviderError::AccessDenied("the tenant is not one of the client's".into())
                })?;
            tenant = t;
        } else {
            rest.push(part);
        }
    }
    let rest = (!rest.is_empty()).then(|| rest.join(" "));
    Ok((tenant, platform, rest))
}

/// Whether the host session can serve `pending` as it is (never when the login must be
/// fresh: `prompt=login`).
fn session_fits(
    client: &Client,
    pending: &PendingAuthorization,
    session: &Authenticated,
    now_s: u64,
) -> bool {
    let auth_time = unix(session.auth_time);
    client.allows_tenant(&session.tenant)
        && client.allows_platform(&session.platform)
        && pending
            .platform
            .as_deref()
            .is_none_or(|p| p == session.platform.as_str())
        && pending
            .max_age
            .is_none_or(|m| now_s.saturating_sub(auth_time) <= m)
        && pending.fresh_after_ms.is_none()
}

async fn continue_flow(
    p: &Provider,
    client: &Arc<Client>,
    mut pending: PendingAuthorization,
    params: &Params,
    headers: HeaderMap,
) -> Result<Response, ProviderError> {
    let prompt = parse_prompt(params.get("prompt"))?;
    let session = p.inner.host.session(&headers).await?;
    let now_s = now();
    if let Some(s) = &session
        && session_fits(client, &pending, s, now_s)
    {
        return issue_code(p, client, &pending, s).await;
    }
    if prompt.none {
        return Err(ProviderError::LoginRequired(
            "no signed-in session fits the request".into(),
        ));
    }
    // A login is needed; when the session is too old, the new one must be fresh.
    let stale = session.as_ref().is_some_and(|s| {
        pending
            .max_age
            .is_some_and(|m| now_s.saturating_sub(unix(s.auth_time)) > m)
    });
    if stale && pending.fresh_after_ms.is_none() {
        pending.fresh_after_ms = Some(unix_ms(SystemTime::now()));
    }
    let tenant = TenantId::new(&pending.tenant)
        .map_err(|_| ProviderError::Server("stored tenant is invalid".into()))?;
    let allowed: Vec<PlatformName> = p
        .inner
        .host
        .platforms(&tenant)
        .await?
        .into_iter()
        .filter(|pl| client.allows_platform(pl))
        .collect();
    if allowed.is_empty() {
        return Err(ProviderError::AccessDenied(
            "no platform of the tenant is allowed for this client".into(),
        ));
    }
    let mut platform = pending
        .platform
        .as_deref()
        .and_then(|n| PlatformName::new(n).ok())
        .filter(|pl| allowed.contains(pl));
    if platform.is_none() && allowed.len() == 1 {
        platform = Some(allowed[0].clone());
    }
    pending.platform = platform.as_ref().map(|pl| pl.as_str().to_string());
    let id = new_secret()?;
    p.inner
        .store
        .put_request(&id, &pending, p.inner.settings.request_ttl)
        .await?;
    let mut resume = Url::parse(&p.endpoint("/oidc/resume"))
        .map_err(|_| ProviderError::Server("the resume URL is invalid".into()))?;
    resume.query_pairs_mut().append_pair("req", &id);
    let (_, _, hint) = parse_hint(client, params.get("login_hint"))?;
    let response = p
        .inner
        .host
        .login(LoginRequest {
            tenant,
            platform,
            allowed_platforms: allowed,
            resume,
            force: pending.fresh_after_ms.is_some() || session.is_some(),
            login_hint: hint,
            headers,
        })
        .await?;
    Ok(no_store(response))
}

/// `GET /oidc/resume?req=<id>`: the host sends the browser here after the login.
pub(crate) async fn resume(
    State(p): State<Provider>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let params = match Params::parse(query.as_deref().unwrap_or("")) {
        Ok(params) => params,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, &e),
    };
    let Some(id) = params.get("req") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("req is missing".into()),
        );
    };
    let pending = match p.inner.store.take_request(id).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &ProviderError::InvalidRequest(
                    "the sign-in request expired or was used; start again from the application"
                        .into(),
                ),
            );
        }
        Err(e) => return error_page(StatusCode::SERVICE_UNAVAILABLE, &e),
    };
    // The client may have been reconfigured meanwhile: check it again.
    let client = match p.inner.clients.client(&pending.client_id) {
        Some(c) if c.allows_redirect(&pending.redirect_uri) => c,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                &ProviderError::InvalidRequest("the client is no longer configured".into()),
            );
        }
    };
    let reply = Reply {
        provider: &p,
        redirect_uri: &pending.redirect_uri,
        state: pending.state.as_deref(),
    };
    let session = match p.inner.host.session(&headers).await {
        Ok(s) => s,
        Err(e) => return reply.error(&e),
    };
    let Some(session) = session else {
        return reply.error(&ProviderError::AccessDenied(
            "the login did not complete".into(),
        ));
    };
    if !client.allows_tenant(&session.tenant) || !client.allows_platform(&session.platform) {
        return reply.error(&ProviderError::AccessDenied(
            "the signed-in tenant or platform is not allowed for this client".into(),
        ));
    }
    if pending
        .fresh_after_ms
        .is_some_and(|t| unix_ms(session.auth_time) < t)
    {
        return reply.error(&ProviderError::LoginRequired(
            "the login was not fresh".into(),
        ));
    }
    match issue_code(&p, &client, &pending, &session).await {
        Ok(r) => r,
        Err(e) => reply.error(&e),
    }
}

/// Stores a code for `session` and redirects to the client with it.
async fn issue_code(
    p: &Provider,
    client: &Client,
    pending: &PendingAuthorization,
    session: &Authenticated,
) -> Result<Response, ProviderError> {
    let code = new_secret()?;
    let grant_id = random_token(16)?;
    let profile = &session.profile;
    let grant = Grant {
        id: grant_id.clone(),
        client_id: client.client_id.clone(),
        scopes: pending.scopes.clone(),
        subject: session.subject.clone(),
        sub: client_sub(p, client, &pending.redirect_uri, &session.subject)?,
        sid: session.sid.clone(),
        auth_time: unix(session.auth_time),
        require_auth_time: pending.require_auth_time,
        tenant: session.tenant.as_str().to_string(),
        platform: session.platform.as_str().to_string(),
        uid: profile.subject.value.clone(),
        user_id: profile
            .user_id
            .clone()
            .filter(|u| *u != profile.subject.value),
        account: session.account.clone(),
        claims: profile_claims(profile, &pending.scopes),
        created_at: unix(SystemTime::now()),
    };
    let record = CodeGrant {
        grant_id,
        redirect_uri: pending.redirect_uri.clone(),
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        grant,
    };
    p.inner
        .store
        .put_code(&sha256_hex(&code), &record, p.inner.settings.code_ttl)
        .await?;
    Ok(redirect_to(
        p,
        &pending.redirect_uri,
        &[("code", &code)],
        pending.state.as_deref(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_values_are_checked() {
        assert!(parse_prompt(Some("none")).unwrap().none);
        assert!(parse_prompt(Some("login consent")).unwrap().login);
        assert!(parse_prompt(Some("none login")).is_err());
        assert!(parse_prompt(Some("bogus")).is_err());
        assert!(!parse_prompt(None).unwrap().none);
    }

    #[test]
    fn pkce_values_are_43_to_128_unreserved_characters() {
        assert!(is_pkce_value(&"a".repeat(43)));
        assert!(is_pkce_value(&"a-._~".repeat(20)));
        assert!(!is_pkce_value(&"a".repeat(42)));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", "a".repeat(43))));
    }
}
