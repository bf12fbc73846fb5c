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
        let session = match &self.inner.identities {
            // One stable account per person: found, linked by the tenant's rules, or created.
            Some(store) => {
                let account = store
                    .account_for(profile, &p.config().identity.link)
                    .await?;
                self.inner
                    .issuer
                    .issue_for_account(profile, &scopes, account.as_str())
            }
            None => self.inner.issuer.issue(profile, &scopes),
        }
        .map_err(Error::from)?;
        self.remember_for_provider(profile, &session.claims).await;
        let config = &self.inner.config;
        let cookie = cookies::set(
            &config.cookies,
            &config.cookies.name(&config.cookies.session_name),
            &session.token,
            "/",
            config.session_ttl(),
        )
        .ok_or_else(|| ApiError::from(Error::Internal("unusable session cookie".into())))?;
        tracing::info!(
            tenant = %p.tenant(),
            platform = %p.platform(),
            subject = %profile.subject,
            jti = %session.claims.jti,
            "session issued"
        );
        Ok((session, cookie))
    }

    /// The session token of a request (bearer header first, then cookie), verified and not
    /// revoked: neither its `jti` nor, issued before their revocation, one of its subjects
    /// (the person, their linked account: a leaver's sessions).
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
        let claims = self.verified_claims(headers)?;
        match self.inner.revocations.check_claims(&claims).await {
            Ok(false) => Ok(claims),
            Ok(true) => {
                tracing::info!(jti = %claims.jti, "revoked session token refused");
                Err(ApiError::unauthenticated("invalid or expired session"))
            }
            // Fail closed, but say "try again", not "signed out": the token may well be good.
            Err(_) => Err(ApiError::unavailable(
                "store_unavailable",
                "sessions cannot be checked right now (the session store is unreachable); try again",
            )),
        }
    }

    /// The session token of a request (bearer header first, then cookie), verified (signature,
    /// issuer, audience, time) — revocation not checked.
    pub(crate) fn verified_claims(&self, headers: &HeaderMap) -> Result<Claims, ApiError> {
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
            None => {
                let c = &self.inner.config.cookies;
                cookies::get(headers, &c.name(&c.session_name))
            }
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::unauthenticated("no session"))?,
        };
        let claims = self.inner.issuer.verify(token).map_err(|e| {
            tracing::info!(reason = %e, "session token refused");
            ApiError::unauthenticated("invalid or expired session")
        })?;
        Ok(claims)
    }
}

/// `GET /me`: the verified claims of the caller's session.
pub async fn me(State(gw): State<Gateway>, headers: HeaderMap) -> Result<Response, ApiError> {
    let claims = gw.authenticate(&headers).await?;
    Ok(no_store(Json(claims).into_response()))
}

/// Whether a state-changing request comes from the gateway's own pages or a non-browser
/// client: refused when the browser says it is cross-site (`Sec-Fetch-Site`) or names another
/// origin (`Origin`). Clients that send neither (curl, server-side apps) are not browsers a
/// forged form could drive.
pub(crate) fn same_origin(gw: &Gateway, headers: &HeaderMap) -> bool {
    let site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"));
    if site.is_some_and(|s| !matches!(s, "same-origin" | "none")) {
        return false;
    }
    match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        None => true,
        // Browsers send `null` under a no-referrer policy: then only Sec-Fetch-Site can tell.
        Some(Ok("null")) => site.is_some(),
        Some(Ok(origin)) => origin == gw.config().public_url.origin().ascii_serialization(),
        Some(Err(_)) => false,
    }
}

/// `POST /logout`: revokes the session token (until its expiry) and clears the cookie.
/// Idempotent: without a valid session it only clears the cookie. A cross-origin request from a
/// browser is refused (403 `cross_origin`): another site cannot sign the user out.
pub async fn logout(State(gw): State<Gateway>, headers: HeaderMap) -> Response {
    if !same_origin(&gw, &headers) {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "cross_origin",
            "logout must come from this site",
        )
        .into_response();
    }
    let cfg = &gw.inner.config.cookies;
    let clear = cookies::clear(cfg, &cfg.name(&cfg.session_name), "/");
    let revoked = match revoke_session(&gw, &headers).await {
        SessionEnd::NoSession => false,
        SessionEnd::Revoked => true,
        SessionEnd::ThisReplicaOnly => {
            // In force on this replica now, queued for the others: say so, don't claim it.
            let mut r = ApiError::unavailable(
                "store_unavailable",
                "signed out on this server; the other servers learn it when the session \
                 store is back (queued), until then retry to be sure",
            )
            .into_response();
            if let Some(c) = clear {
                r.headers_mut().insert(header::SET_COOKIE, c);
            }
            return r;
        }
    };
    let mut r = if wants_html(&headers) {
        Redirect::to("/").into_response()
    } else {
        Json(json!({ "revoked": revoked })).into_response()
    };
    if let Some(c) = clear {
        r.headers_mut().insert(header::SET_COOKIE, c);
    }
    r
}

/// What [`revoke_session`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// No live session in the request (none, invalid, or revoked before).
    NoSession,
    /// Revoked on the shared list.
    Revoked,
    /// Revoked on this replica only; queued for the shared list (a store outage).
    ThisReplicaOnly,
}

/// Revokes the request's session until its expiry: `POST /logout` and the OpenID Provider's
/// RP-initiated logout. A token that verifies is revoked even when the deny-list cannot be read
/// (an outage): revoking twice is harmless, skipping a revocation is not.
pub(crate) async fn revoke_session(gw: &Gateway, headers: &HeaderMap) -> SessionEnd {
    let Ok(claims) = gw.verified_claims(headers) else {
        return SessionEnd::NoSession;
    };
    if let Ok(true) = gw.inner.revocations.check(&claims.jti).await {
        return SessionEnd::NoSession; // signed out before
    }
    let until = UNIX_EPOCH + Duration::from_secs(claims.exp);
    if gw
        .inner
        .revocations
        .revoke_checked(&claims.jti, until)
        .await
        .is_err()
    {
        tracing::warn!(jti = %claims.jti, "session revoked on this replica only; queued for the shared list");
        return SessionEnd::ThisReplicaOnly;
    }
    tracing::info!(jti = %claims.jti, sub = %claims.sub, "session revoked");
    SessionEnd::Revoked
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
