//! Sessions: issuing one for a login (scopes from the tenant's `session_scopes`), reading the
//! caller's (`GET /me`, the home page) and revoking it (`POST /logout`).

use std::time::{Duration, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use unilogin::{Error, Prepared, UserProfile};
use unilogin_axum::session::{Claims, IssuedSession};

use super::{no_store, sandbox, wants_html};
use crate::app::Gateway;
use crate::cookies;
use crate::error::ApiError;
use crate::pages::{self, SignedIn};

/// Marks a configuration revision whose `options.scopes` was checked (see [`session_scopes`]).
struct LegacyScopesChecked;

/// The session scopes a person gets: the tenant's `session_scopes`, compiled when the
/// configuration was read (never parsed per login). Before `session_scopes` existed the gateway
/// read its rules from `options.scopes` — which OAuth2/OIDC platforms read as their scopes — so
/// rules still left there are named in a warning, once per configuration revision.
fn session_scopes(p: &Prepared, profile: &UserProfile) -> Vec<String> {
    let _ = p.compiled(|config| {
        if config.options.get("scopes").is_some_and(|v| v.is_object()) {
            tracing::warn!(
                tenant = %config.tenant,
                platform = %config.platform,
                "`options.scopes` holds session scope rules, which the gateway no longer reads: move them to `session_scopes`"
            );
        }
        Ok(LegacyScopesChecked)
    });
    p.config()
        .session_scopes
        .as_ref()
        .map(|rules| rules.scopes_for(profile))
        .unwrap_or_default()
}

impl Gateway {
    /// Issues the session for a login; returns it with its `Set-Cookie` header.
    pub(crate) async fn session_for(
        &self,
        p: &Prepared,
        profile: &UserProfile,
    ) -> Result<(IssuedSession, HeaderValue), ApiError> {
        let scopes = session_scopes(p, profile);
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
            tenant = %p.tenant(),
            platform = %p.platform(),
            user_id = %profile.user_id,
            jti = %session.claims.jti,
            "session issued"
        );
        Ok((session, cookie))
    }

    /// The session token of a request (bearer header first, then cookie), verified and not
    /// revoked.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
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
        Ok(claims)
    }
}

/// `GET /me`: the verified claims of the caller's session.
pub async fn me(State(gw): State<Gateway>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = gw.authenticate(&headers).await?;
    Ok(no_store(Json(claims).into_response()))
}

/// `POST /logout`: revokes the session token (until its expiry) and clears the cookie.
/// Idempotent: without a valid session it only clears the cookie.
pub async fn logout(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    let revoked = match gw.authenticate(&headers).await {
        Ok(claims) => {
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
    let signed_in = gw.authenticate(&headers).await.ok().map(|c| SignedIn {
        name: c.name,
        tenant: c.tenant,
        platform: c.platform,
        uid: c.uid,
        scope: c.scope,
    });
    pages::home_page(signed_in.as_ref(), &sandbox::links(&gw))
}
