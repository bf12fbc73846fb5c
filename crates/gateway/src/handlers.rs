//! The endpoints.
//!
//! | route | what |
//! |---|---|
//! | `GET /auth/{tenant}/{platform}/login?return_to=…` | starts a login (H5 page or redirect to the platform) |
//! | `GET /auth/{tenant}/{platform}/callback` | finishes a web login: state, code, session, redirect |
//! | `POST /auth/{tenant}/{platform}/code` | H5 login-free exchange `{code}` → profile + session |
//! | `GET /me` | the session's claims (cookie or `Authorization: Bearer`) |
//! | `POST /logout` | revokes the session token and clears the cookie |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (config source + state store) |
//! | `GET /metrics` | Prometheus / OpenMetrics text |
//! | `GET /.well-known/jwks.json` | public keys of the session tokens |

use std::collections::HashMap;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use unilogin::error::StateProblem;
use unilogin::platform::WebCallback;
use unilogin::sso::AuthorizeParams;
use unilogin::user_agent::ClientInfo;
use unilogin::{AuthCode, Error, Flow, Login, TenantId, UserProfile};
use unilogin_axum::session::{Claims, ScopeRules};
use url::Url;

use crate::app::Gateway;
use crate::cookies;
use crate::error::ApiError;
use crate::pages::{self, H5Page, SignedIn};
use crate::store::{LoginState, Taken, now_ms};

/// Longest accepted authorization code (WeCom documents up to 512 bytes).
const MAX_CODE_LEN: usize = 512;
/// Longest accepted `return_to`.
const MAX_RETURN_TO_LEN: usize = 2048;

/// The S256 PKCE challenge of `verifier`: `BASE64URL(SHA-256(verifier))` without padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// A validated (tenant, platform) from the path, with the canonical platform name.
struct Target {
    tenant: TenantId,
    platform: String,
}

impl Gateway {
    /// Resolves the path's tenant and platform: registered, configured and enabled.
    async fn target(&self, tenant: &str, platform: &str) -> Result<Target, Error> {
        let tenant = TenantId::new(tenant).map_err(|_| Error::UnknownTenant {
            tenant: tenant.chars().take(64).collect(),
        })?;
        let handler = self.inner.sso.handler(&tenant, platform).await?;
        Ok(Target {
            platform: handler.name().as_str().to_string(),
            tenant,
        })
    }

    /// Metric labels for an outcome: configured names only.
    fn count(&self, target: Option<&Target>, flow: Flow, outcome: &str) {
        let (t, p) = match target {
            Some(t) => (t.tenant.as_str(), t.platform.as_str()),
            None => ("-", "-"),
        };
        self.inner.metrics.login(t, p, &flow.to_string(), outcome);
    }

    async fn scopes(&self, target: &Target, profile: &UserProfile) -> Result<Vec<String>, Error> {
        let config = self
            .inner
            .sso
            .config_source()
            .get(&target.tenant, &target.platform)
            .await?;
        let rules = match config.options.get("scopes") {
            Some(v) => ScopeRules::from_value(v).map_err(|e| {
                Error::config(
                    Some(&target.tenant),
                    Some(&target.platform),
                    "options.scopes",
                    e.to_string(),
                )
            })?,
            None => ScopeRules::default(),
        };
        Ok(rules.scopes_for(profile))
    }

    /// Runs a login, counting it and timing its upstream part.
    async fn run_login<F>(&self, target: &Target, flow: Flow, login: F) -> Result<Login, ApiError>
    where
        F: Future<Output = unilogin::Result<Login>>,
    {
        let started = Instant::now();
        let result = login.await;
        self.inner
            .metrics
            .upstream(&target.platform, &flow.to_string(), started.elapsed());
        match result {
            Ok(login) => {
                self.count(Some(target), flow, "success");
                Ok(login)
            }
            Err(e) => {
                self.count(Some(target), flow, e.kind());
                Err(e.into())
            }
        }
    }

    /// Issues the session for a login; returns it with its `Set-Cookie` header.
    async fn session_for(
        &self,
        target: &Target,
        profile: &UserProfile,
    ) -> Result<(unilogin_axum::session::IssuedSession, HeaderValue), ApiError> {
        let scopes = self.scopes(target, profile).await?;
        let session = self
            .inner
            .issuer
            .issue(profile, &scopes)
            .map_err(Error::from)?;
        let config = &self.inner.config;
        let cookie = cookies::set(
            &config.cookies,
            &config.cookies.session_name,
            &session.token,
            "/",
            config.session_ttl(),
        )
        .ok_or_else(|| ApiError::from(Error::Internal("unusable session cookie".into())))?;
        tracing::info!(
            tenant = %target.tenant,
            platform = %target.platform,
            user_id = %profile.user_id,
            jti = %session.claims.jti,
            "session issued"
        );
        Ok((session, cookie))
    }

    /// The session token of a request (bearer header first, then cookie), verified and not
    /// revoked.
    async fn authenticate(&self, headers: &HeaderMap) -> Result<(Claims, String), ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let token = match bearer {
            Some(t) => t,
            None => cookies::get(headers, &self.inner.config.cookies.session_name)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| ApiError::unauthenticated("no session"))?,
        };
        let claims = self.inner.issuer.verify(token).map_err(|e| {
            tracing::info!(reason = %e, "session token refused");
            ApiError::unauthenticated("invalid or expired session")
        })?;
        if self.inner.revocations.is_revoked(&claims.jti).await {
            tracing::info!(jti = %claims.jti, "revoked session token refused");
            return Err(ApiError::unauthenticated("invalid or expired session"));
        }
        Ok((claims, token.to_string()))
    }
}

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
    Path((tenant, platform)): Path<(String, String)>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let html = wants_html(&headers);
    match start_login(&gw, &tenant, &platform, query, &headers).await {
        Ok(r) => r,
        Err(e) => e.html(html).into_response(),
    }
}

async fn start_login(
    gw: &Gateway,
    tenant: &str,
    platform: &str,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request("bad_request", e.body_text()))?;
    let target = gw.target(tenant, platform).await?;
    let config = gw
        .inner
        .sso
        .config_source()
        .get(&target.tenant, &target.platform)
        .await?;
    let candidate =
        match query.return_to {
            Some(r) if r.len() <= MAX_RETURN_TO_LEN => r,
            Some(_) => {
                return Err(Error::RedirectNotAllowed {
                    tenant: target.tenant.clone(),
                }
                .into());
            }
            None => config.redirect_uris.first().cloned().ok_or_else(|| {
                ApiError::bad_request("missing_return_to", "`return_to` is required")
            })?,
        };
    let return_to = gw
        .inner
        .sso
        .check_return_to(&target.tenant, &target.platform, &candidate)
        .await?;
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let flow = ClientInfo::detect(ua).flow_for(&target.platform);
    let cfg = &gw.inner.config;
    let callback = gw.callback_url(target.tenant.as_str(), &target.platform)?;
    let state = crate::random_hex(32);
    // PKCE (RFC 7636, S256) and an OIDC nonce for every redirect login; platforms that do not
    // use them ignore them.
    let code_verifier = crate::random_hex(32);
    let code_challenge = pkce_challenge(&code_verifier);
    let nonce = crate::random_hex(16);
    let url = gw
        .inner
        .sso
        .authorize_url(
            &target.tenant,
            &target.platform,
            AuthorizeParams {
                flow,
                redirect_uri: &callback,
                state: &unilogin::State::new(state.clone()),
                nonce: Some(&nonce),
                code_challenge: Some(&code_challenge),
            },
        )
        .await;
    let url = match (flow, url) {
        // The platform's client yields the code through its JSAPI: serve the H5 page.
        (Flow::H5, Err(Error::Unsupported { .. })) => {
            let base = cfg.base_url();
            let code_url = base
                .join(&format!("auth/{}/{}/code", target.tenant, target.platform))
                .map_err(|e| Error::Internal(e.to_string()))?;
            let sandbox_code_url = match &gw.inner.sandbox {
                Some(_) => Some(
                    base.join(&format!("sandbox/{}/h5-code", target.platform))
                        .map_err(|e| Error::Internal(e.to_string()))?
                        .to_string(),
                ),
                None => None,
            };
            let jssdk = match target.platform.as_str() {
                "dingtalk" => cfg.h5.dingtalk_jssdk.clone(),
                "feishu" => cfg.h5.feishu_jssdk.clone(),
                _ => None,
            }
            .filter(|_| gw.inner.sandbox.is_none());
            return Ok(pages::h5_page(&H5Page {
                platform: target.platform.clone(),
                tenant: target.tenant.to_string(),
                corp_id: config.corp_id.clone(),
                app_id: config.app_key.as_str().to_string(),
                code_url: code_url.to_string(),
                return_to: return_to.to_string(),
                sandbox_code_url,
                jssdk,
            }));
        }
        (_, url) => url?,
    };
    let binding = cookies::get(headers, &cfg.cookies.binding_name)
        .filter(|b| b.len() == 64 && b.bytes().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_string)
        .unwrap_or_else(|| crate::random_hex(32));
    let ttl = cfg.state_ttl();
    let record = LoginState {
        tenant: target.tenant.to_string(),
        platform: target.platform.clone(),
        flow,
        return_to: return_to.to_string(),
        binding: binding.clone(),
        expires_at_ms: now_ms().saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(0)),
        code_verifier: Some(code_verifier),
        nonce: Some(nonce),
    };
    // Kept twice as long as valid, so late and replayed callbacks are told apart from forged.
    gw.inner
        .states
        .put(&state, &record, ttl * 2)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let cookie = cookies::set(
        &cfg.cookies,
        &cfg.cookies.binding_name,
        &binding,
        "/auth/",
        ttl,
    )
    .ok_or_else(|| ApiError::from(Error::Internal("unusable binding cookie".into())))?;
    tracing::info!(tenant = %target.tenant, platform = %target.platform, %flow, "login started");
    let mut r = Redirect::to(url.as_str()).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `GET /auth/{tenant}/{platform}/callback`.
pub async fn callback(
    State(gw): State<Gateway>,
    Path((tenant, platform)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let html = wants_html(&headers);
    match finish_login(&gw, &tenant, &platform, &query, &headers).await {
        Ok(r) => r,
        Err(e) => e.html(html).into_response(),
    }
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

async fn finish_login(
    gw: &Gateway,
    tenant: &str,
    platform: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let state = query.get("state").filter(|s| !s.is_empty());
    if let Some(error) = query.get("error") {
        // The platform refused (the user pressed Deny, …): burn the state, say what happened.
        if let Some(s) = state {
            let _ = gw.inner.states.take(s).await;
        }
        let description = query
            .get("error_description")
            .map(|d| format!(": {}", clip(d, 200)))
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            "platform_error",
            format!(
                "{} reported `{}`{description}",
                clip(platform, 64),
                clip(error, 64)
            ),
        ));
    }
    let target = gw.target(tenant, platform).await?;
    let fail = |p: StateProblem| {
        gw.count(Some(&target), Flow::Web, "state");
        ApiError::from(Error::State(p))
    };
    let state = state.ok_or_else(|| fail(StateProblem::Missing))?;
    let record = match gw
        .inner
        .states
        .take(state)
        .await
        .map_err(|e| ApiError::store(&e))?
    {
        Taken::Found(r) => r,
        Taken::Used => return Err(fail(StateProblem::Reused)),
        Taken::Missing => return Err(fail(StateProblem::Unknown)),
    };
    if now_ms() >= record.expires_at_ms {
        return Err(fail(StateProblem::Expired));
    }
    let cookie = cookies::get(headers, &gw.inner.config.cookies.binding_name).unwrap_or("");
    if !bool::from(cookie.as_bytes().ct_eq(record.binding.as_bytes())) {
        return Err(fail(StateProblem::WrongBrowser));
    }
    if record.tenant != target.tenant.as_str() || record.platform != target.platform {
        return Err(fail(StateProblem::WrongTarget));
    }
    let code = query
        .get("code")
        .or_else(|| query.get("authCode"))
        .filter(|c| !c.is_empty() && c.len() <= MAX_CODE_LEN)
        .ok_or_else(|| {
            ApiError::bad_request("missing_code", "the callback carries no authorization code")
        })?;
    let code = AuthCode::new(code.clone());
    let callback = gw.callback_url(target.tenant.as_str(), &target.platform)?;
    // Every redirect login, web/QR or in-client OAuth (WeCom, Feishu inside the client), comes
    // back here with a code of the authorize endpoint: the web exchange (with the redirect URI
    // and PKCE verifier) completes it. The metric keeps the flow the login was started with.
    let cb = WebCallback {
        code: &code,
        redirect_uri: &callback,
        code_verifier: record.code_verifier.as_deref(),
        nonce: record.nonce.as_deref(),
    };
    let login = gw
        .run_login(
            &target,
            record.flow,
            gw.inner
                .sso
                .complete_web_login(&target.tenant, &target.platform, cb),
        )
        .await?;
    let (_, cookie) = gw.session_for(&target, &login.profile).await?;
    let return_to = Url::parse(&record.return_to)
        .map_err(|_| ApiError::from(Error::Internal("stored return_to unparsable".into())))?;
    let mut r = Redirect::to(return_to.as_str()).into_response();
    let h = r.headers_mut();
    h.insert(header::SET_COOKIE, cookie);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(r)
}

/// Body of `POST /auth/{tenant}/{platform}/code`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The code from the platform client's JSAPI.
    pub code: String,
}

/// Answer of `POST /auth/{tenant}/{platform}/code`.
#[derive(Debug, Serialize)]
pub struct CodeAnswer {
    /// The unified profile.
    pub profile: UserProfile,
    /// The session token (compact JWT; also set as the session cookie).
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// `POST /auth/{tenant}/{platform}/code`.
pub async fn code(
    State(gw): State<Gateway>,
    Path((tenant, platform)): Path<(String, String)>,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let target = gw.target(&tenant, &platform).await?;
    let Json(body) = body.map_err(|e| {
        let status = e.status();
        let kind = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "bad_request"
        };
        ApiError::new(status, kind, e.body_text())
    })?;
    if body.code.is_empty() || body.code.len() > MAX_CODE_LEN {
        return Err(ApiError::bad_request(
            "bad_request",
            "`code` must be 1 to 512 bytes",
        ));
    }
    let code = AuthCode::new(body.code);
    let login = gw
        .run_login(
            &target,
            Flow::H5,
            gw.inner
                .sso
                .login_with_code(&target.tenant, &target.platform, &code),
        )
        .await?;
    let (session, cookie) = gw.session_for(&target, &login.profile).await?;
    let expires_in = session
        .expires_at
        .duration_since(Gateway::now())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut r = Json(CodeAnswer {
        profile: login.profile,
        token: session.token,
        token_type: "Bearer",
        expires_in,
        scope: session.claims.scope,
    })
    .into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `GET /me`: the verified claims of the caller's session.
pub async fn me(State(gw): State<Gateway>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (claims, _) = gw.authenticate(&headers).await?;
    let mut r = Json(claims).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// `POST /logout`: revokes the session token (until its expiry) and clears the cookie.
/// Idempotent: without a valid session it only clears the cookie.
pub async fn logout(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let revoked = match gw.authenticate(&headers).await {
        Ok((claims, _)) => {
            let until = UNIX_EPOCH + Duration::from_secs(claims.exp);
            gw.inner.revocations.revoke(&claims.jti, until).await;
            tracing::info!(jti = %claims.jti, sub = %claims.sub, "session revoked");
            true
        }
        Err(_) => false,
    };
    let cfg = &gw.inner.config.cookies;
    let mut r = if wants_html(&headers) {
        Redirect::to("/").into_response()
    } else {
        Json(json!({ "revoked": revoked })).into_response()
    };
    if let Some(c) = cookies::clear(cfg, &cfg.session_name, "/") {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// `GET /`: who is signed in; in the sandbox, login links.
pub async fn home(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let signed_in = gw.authenticate(&headers).await.ok().map(|(c, _)| SignedIn {
        name: c.name,
        tenant: c.tenant,
        platform: c.platform,
        uid: c.uid,
        scope: c.scope,
    });
    let links = gw
        .inner
        .sandbox
        .as_ref()
        .map(|s| s.links.clone())
        .unwrap_or_default();
    pages::home_page(signed_in.as_ref(), &links)
}

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the tenant configuration and the state store answer.
pub async fn readyz(State(gw): State<Gateway>) -> Response {
    let config = gw.inner.sso.config_source().list().await;
    let store = gw.inner.states.ping().await;
    let ok = config.is_ok() && store.is_ok();
    let describe = |r: &Result<(), Error>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.kind().to_string(),
    };
    if let Err(e) = &config {
        tracing::warn!(error = %e, "readiness: config source failed");
    }
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: state store failed");
    }
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {
            "config": describe(&config.map(|_| ())),
            "state_store": describe(&store),
        }
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(gw): State<Gateway>) -> Result<Response, ApiError> {
    let text = gw
        .inner
        .metrics
        .render()
        .map_err(|_| Error::Internal("encoding metrics".into()))?;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(gw): State<Gateway>) -> Response {
    let mut r = Json(gw.inner.issuer.keys().jwks()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// Sandbox only — `POST /sandbox/{platform}/h5-code`: what the client's JSAPI returns, from
/// the platform fake.
pub async fn sandbox_code(
    State(gw): State<Gateway>,
    Path(platform): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hooks = gw
        .inner
        .sandbox
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"))?;
    let code = (hooks.issue_h5_code)(&platform).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_platform",
            "no fake for this platform",
        )
    })?;
    Ok(Json(json!({ "code": code })))
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn html_is_chosen_by_accept() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&h));
    }
}
