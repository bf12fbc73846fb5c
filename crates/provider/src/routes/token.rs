//! `POST /oidc/token` (RFC 6749 §3.2, §4.1.3, §6; OIDC Core §3.1.3, §12).
//!
//! The body must be a form (`application/x-www-form-urlencoded`, at most
//! [`Settings::max_body`](crate::Settings::max_body)). The client authenticates with its
//! configured method only (`client_secret_basic`, `client_secret_post` or `none`); using two
//! methods at once is `invalid_request`. Errors are RFC 6749 §5.2 JSON with
//! `Cache-Control: no-store`; `invalid_client` is 401, with `WWW-Authenticate: Basic` when the
//! client tried Basic.
//!
//! - `authorization_code`: the code is taken once; a code presented again revokes the grant
//!   it became (its refresh tokens and access tokens). `redirect_uri` must equal the one of
//!   the authorization request; the PKCE verifier must hash to the challenge (and must be
//!   absent when there was none).
//! - `refresh_token`: rotation with reuse detection (see [`crate::store`]); `scope` may narrow
//!   the granted scopes for the new access token (the refresh token keeps the grant's).

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;

use super::authorize::is_pkce_value;
use super::{Params, is_form, json_no_store};
use crate::claims::{access_token, id_token};
use crate::client::{AuthMethod, Client, GrantType};
use crate::error::ProviderError;
use crate::provider::{Provider, now};
use crate::secret::{ct_eq, new_secret, sha256_hex};
use crate::store::{CodeTaken, Grant, IssuedToken, Rotation};

/// `POST /oidc/token`.
pub(crate) async fn token(State(p): State<Provider>, headers: HeaderMap, body: Bytes) -> Response {
    let basic = headers.contains_key(header::AUTHORIZATION);
    match handle(&p, &headers, &body).await {
        Ok(r) => r,
        Err(e) => error_response(&e, basic),
    }
}

/// An RFC 6749 §5.2 error answer.
pub(crate) fn error_response(e: &ProviderError, basic: bool) -> Response {
    if e.is_internal() {
        tracing::warn!(error = %e, "token request failed");
    } else {
        tracing::debug!(error = %e, "token request refused");
    }
    let mut r = json_no_store(
        e.token_status(),
        json!({"error": e.code(), "error_description": e.public_description()}),
    );
    if matches!(e, ProviderError::InvalidClient(_)) && basic {
        // RFC 6749 §5.2: the scheme the client used. The `error` auth-param (as RFC 6750 has
        // for Bearer) lets clients that read the challenge rather than the body, such as
        // openid-client, report `invalid_client` too; RFC 7235 clients ignore unknown params.
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Basic realm=\"oidc\", charset=\"UTF-8\", error=\"invalid_client\"",
            ),
        );
    }
    r
}

async fn handle(p: &Provider, headers: &HeaderMap, body: &[u8]) -> Result<Response, ProviderError> {
    if !is_form(headers) {
        return Err(ProviderError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ProviderError::InvalidRequest("the body is not UTF-8".into()))?;
    let params = Params::parse(text)?;
    let client = authenticate(p, headers, &params)?;
    let grant_type = match params.get("grant_type") {
        None => {
            return Err(ProviderError::InvalidRequest(
                "grant_type is missing".into(),
            ));
        }
        Some("authorization_code") => GrantType::AuthorizationCode,
        Some("refresh_token") => GrantType::RefreshToken,
        Some(_) => {
            return Err(ProviderError::UnsupportedGrantType(
                "supported: authorization_code, refresh_token".into(),
            ));
        }
    };
    if !client.allows_grant(grant_type) {
        return Err(ProviderError::UnauthorizedClient(format!(
            "the client may not use {}",
            grant_type.as_str()
        )));
    }
    match grant_type {
        GrantType::AuthorizationCode => code_grant(p, &client, &params).await,
        GrantType::RefreshToken => refresh_grant(p, &client, &params).await,
    }
}

/// The client, authenticated by its configured method.
fn authenticate(
    p: &Provider,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Client>, ProviderError> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => Some(parse_basic(v)?),
        None => None,
    };
    let form_id = params.get("client_id");
    let form_secret = params.get("client_secret");
    let unknown = || ProviderError::InvalidClient("client authentication failed".into());
    match basic {
        Some((id, secret)) => {
            if form_secret.is_some() {
                return Err(ProviderError::InvalidRequest(
                    "use one client authentication method".into(),
                ));
            }
            if form_id.is_some_and(|f| f != id) {
                return Err(ProviderError::InvalidRequest(
                    "client_id differs from the authenticated client".into(),
                ));
            }
            let client = p.inner.clients.client(&id).ok_or_else(unknown)?;
            if client.auth_method() != AuthMethod::ClientSecretBasic
                || !client.check_secret(&secret)
            {
                return Err(unknown());
            }
            Ok(client)
        }
        None => {
            let id = form_id
                .ok_or_else(|| ProviderError::InvalidClient("no client authentication".into()))?;
            let client = p.inner.clients.client(id).ok_or_else(unknown)?;
            match (client.auth_method(), form_secret) {
                (AuthMethod::ClientSecretPost, Some(secret)) if client.check_secret(secret) => {
                    Ok(client)
                }
                (AuthMethod::None, None) => Ok(client),
                _ => Err(unknown()),
            }
        }
    }
}

/// `Authorization: Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &HeaderValue) -> Result<(String, String), ProviderError> {
    let bad = || ProviderError::InvalidClient("malformed Basic authorization".into());
    let text = value.to_str().map_err(|_| bad())?;
    let (scheme, b64) = text.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| -> Result<String, ProviderError> {
        let plus = s.replace('+', "%20");
        Ok(url::form_urlencoded::parse(format!("x={plus}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default())
    };
    Ok((decode(id)?, decode(secret)?))
}

async fn code_grant(
    p: &Provider,
    client: &Client,
    params: &Params,
) -> Result<Response, ProviderError> {
    let code = params
        .get("code")
        .ok_or_else(|| ProviderError::InvalidRequest("code is missing".into()))?;
    let s = &p.inner.settings;
    let spent_ttl = s.access_ttl.max(s.code_ttl).max(Duration::from_secs(600));
    let record = match p
        .inner
        .store
        .take_code(&sha256_hex(code), spent_ttl)
        .await?
    {
        CodeTaken::Missing => {
            return Err(ProviderError::InvalidGrant(
                "the code is invalid or expired".into(),
            ));
        }
        CodeTaken::Spent { grant_id } => {
            tracing::warn!(client = %client.client_id, "an authorization code was presented twice; revoking its tokens");
            revoke_grant(p, &grant_id).await?;
            return Err(ProviderError::InvalidGrant(
                "the code was used before".into(),
            ));
        }
        CodeTaken::Found(record) => record,
    };
    if record.grant.client_id != client.client_id {
        return Err(ProviderError::InvalidGrant(
            "the code was issued to another client".into(),
        ));
    }
    if params.get("redirect_uri") != Some(record.redirect_uri.as_str()) {
        return Err(ProviderError::InvalidGrant(
            "redirect_uri differs from the authorization request".into(),
        ));
    }
    match (&record.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_value(verifier) {
                return Err(ProviderError::InvalidGrant(
                    "code_verifier is not 43 to 128 unreserved characters".into(),
                ));
            }
            let hashed = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
            if !ct_eq(&hashed, challenge) {
                return Err(ProviderError::InvalidGrant(
                    "code_verifier does not match the challenge".into(),
                ));
            }
        }
        (Some(_), None) => {
            return Err(ProviderError::InvalidGrant(
                "code_verifier is missing".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(ProviderError::InvalidGrant(
                "code_verifier without a code_challenge".into(),
            ));
        }
        (None, None) => {}
    }
    let grant = record.grant;
    let wants_refresh = client.allows_grant(GrantType::RefreshToken)
        && (grant.scopes.iter().any(|s| s == "offline_access")
            || client.refresh_without_offline_access);
    let refresh = match wants_refresh {
        true => Some(new_secret()?),
        false => None,
    };
    let grant_ttl = match refresh {
        Some(_) => s.refresh_idle.min(s.refresh_ttl).max(s.access_ttl),
        None => s.access_ttl,
    };
    let store = &p.inner.store;
    store
        .put_grant(
            &grant,
            refresh.as_deref().map(sha256_hex).as_deref(),
            grant_ttl,
        )
        .await?;
    store
        .add_session_client(
            &grant.sid,
            &grant.subject,
            &client.client_id,
            &grant.id,
            grant_ttl,
        )
        .await?;
    let refresh_token = refresh.map(|r| format!("{}.{r}", grant.id));
    let scopes = grant.scopes.clone();
    issue(
        p,
        client,
        &grant,
        &scopes,
        record.nonce.as_deref(),
        refresh_token,
    )
    .await
}

async fn refresh_grant(
    p: &Provider,
    client: &Client,
    params: &Params,
) -> Result<Response, ProviderError> {
    let presented = params
        .get("refresh_token")
        .ok_or_else(|| ProviderError::InvalidRequest("refresh_token is missing".into()))?;
    let invalid = || ProviderError::InvalidGrant("the refresh token is invalid".into());
    let (grant_id, secret) = presented.split_once('.').ok_or_else(invalid)?;
    let store = &p.inner.store;
    let grant = store.grant(grant_id).await?.ok_or_else(invalid)?;
    if grant.client_id != client.client_id {
        return Err(invalid());
    }
    let s = &p.inner.settings;
    let lapse = grant.created_at.saturating_add(s.refresh_ttl.as_secs());
    let left = lapse.saturating_sub(now());
    if left == 0 {
        return Err(ProviderError::InvalidGrant(
            "the refresh token expired".into(),
        ));
    }
    let scopes: Vec<String> = match params.get("scope") {
        None => grant.scopes.clone(),
        Some(asked) => {
            let mut out: Vec<String> = Vec::new();
            for sc in asked.split_ascii_whitespace() {
                if !grant.scopes.iter().any(|g| g == sc) {
                    return Err(ProviderError::InvalidScope(format!(
                        "scope {sc:?} was not granted"
                    )));
                }
                if !out.iter().any(|o| o == sc) {
                    out.push(sc.to_string());
                }
            }
            out
        }
    };
    let next = new_secret()?;
    let ttl = s
        .refresh_idle
        .min(Duration::from_secs(left))
        .max(s.access_ttl);
    match store
        .rotate_refresh(grant_id, &sha256_hex(secret), &sha256_hex(&next), ttl)
        .await?
    {
        Rotation::Invalid => Err(invalid()),
        Rotation::Reused(_) => {
            tracing::warn!(client = %client.client_id, "a former refresh token was presented; revoking its family");
            revoke_grant(p, grant_id).await?;
            Err(ProviderError::InvalidGrant(
                "the refresh token was used before".into(),
            ))
        }
        Rotation::Rotated(grant) => {
            let refresh_token = format!("{}.{next}", grant.id);
            issue(p, client, &grant, &scopes, None, Some(refresh_token)).await
        }
    }
}

/// Signs the access token (recorded for revocation) and id token, and answers.
async fn issue(
    p: &Provider,
    client: &Client,
    grant: &Grant,
    scopes: &[String],
    nonce: Option<&str>,
    refresh_token: Option<String>,
) -> Result<Response, ProviderError> {
    let access = access_token(p, grant, scopes)?;
    let store = &p.inner.store;
    store
        .add_access_token(
            &grant.id,
            &IssuedToken {
                jti: access.jti.clone(),
                exp: access.exp,
            },
        )
        .await?;
    // A concurrent revocation (the same code presented twice at once, a reused refresh
    // token) either saw this token above or is seen here: nothing leaves a revoked grant.
    if store.grant(&grant.id).await?.is_none() {
        return Err(ProviderError::InvalidGrant("the grant was revoked".into()));
    }
    let mut body = json!({
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": p.inner.settings.access_ttl.as_secs().max(1),
        "scope": scopes.join(" "),
    });
    if scopes.iter().any(|s| s == "openid") {
        body["id_token"] = json!(id_token(p, client, grant, scopes, nonce, &access.token)?);
    }
    if let Some(r) = refresh_token {
        body["refresh_token"] = json!(r);
    }
    Ok(json_no_store(StatusCode::OK, body))
}

/// Revokes grant `id` and every access token issued from it.
pub(crate) async fn revoke_grant(p: &Provider, id: &str) -> Result<(), ProviderError> {
    // Long enough for a concurrent redemption to store the grant it is about to store.
    let keep = p.inner.settings.access_ttl.max(Duration::from_secs(600));
    let tokens = p.inner.store.revoke_grant(id, keep).await?;
    for t in tokens {
        let until = std::time::UNIX_EPOCH + Duration::from_secs(t.exp.saturating_add(60));
        if p.inner
            .revocations
            .revoke_checked(&t.jti, until)
            .await
            .is_err()
        {
            tracing::warn!("an access-token revocation reached this process only");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let v = HeaderValue::from_str(&format!("Basic {}", STANDARD.encode("my%20app:s%3Acret+x")))
            .unwrap();
        assert_eq!(
            parse_basic(&v).unwrap(),
            ("my app".to_string(), "s:cret x".to_string())
        );
        assert!(parse_basic(&HeaderValue::from_static("Bearer x")).is_err());
        assert!(parse_basic(&HeaderValue::from_static("Basic !!!")).is_err());
    }
}
