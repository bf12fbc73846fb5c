//! The authenticated user, as handlers see it.

use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use super::rejection::{AuthRejection, RejectionKind};
use crate::session::Claims;

/// The person behind a verified session token. The guard layer puts it into the request's
/// extensions; handlers take it as an extractor.
///
/// Taking `AuthUser` on a route the guard does not cover is a wiring mistake: the request fails
/// with 500 (and an error log) rather than running unauthenticated. `Option<AuthUser>` gives
/// `None` there instead.
///
/// ```
/// use unilogin_axum::AuthUser;
/// async fn delete_user(user: AuthUser) -> Result<String, unilogin_axum::AuthRejection> {
///     user.require("admin:write")?; // 403 insufficient_scope otherwise
///     Ok(format!("{} may delete", user.user_id()))
/// }
/// ```
#[derive(Clone, Debug)]
pub struct AuthUser {
    claims: Arc<Claims>,
    realm: Arc<str>,
}

impl AuthUser {
    pub(crate) fn new(claims: Claims, realm: Arc<str>) -> Self {
        Self {
            claims: Arc::new(claims),
            realm,
        }
    }

    /// All claims of the token.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// `tenant:platform:user_id`.
    pub fn subject(&self) -> &str {
        &self.claims.sub
    }

    /// The tenant id.
    pub fn tenant(&self) -> &str {
        &self.claims.tenant
    }

    /// The platform that authenticated the person.
    pub fn platform(&self) -> &str {
        &self.claims.platform
    }

    /// The platform's user id inside the tenant.
    pub fn user_id(&self) -> &str {
        &self.claims.uid
    }

    /// Display name, when known.
    pub fn name(&self) -> Option<&str> {
        self.claims.name.as_deref()
    }

    /// The token id (`jti`), e.g. to revoke it on logout.
    pub fn token_id(&self) -> &str {
        &self.claims.jti
    }

    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.claims.scopes()
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims.has_scope(scope)
    }

    /// `Ok` if the token was issued for `tenant`, else the 403 `wrong_tenant` rejection: the
    /// check a service behind an [`any_tenant`](super::GuardBuilder::any_tenant) guard makes,
    /// for example against the tenant in its path.
    ///
    /// ```
    /// use axum::extract::Path;
    /// use unilogin_axum::{AuthRejection, AuthUser};
    /// async fn reports(Path(tenant): Path<String>, user: AuthUser) -> Result<String, AuthRejection> {
    ///     user.require_tenant(&tenant)?; // `/t/b/reports` with a tenant-A token: 403
    ///     Ok(format!("reports of {tenant}"))
    /// }
    /// ```
    pub fn require_tenant(&self, tenant: &str) -> Result<(), AuthRejection> {
        if self.tenant() == tenant {
            return Ok(());
        }
        tracing::warn!(
            sub = self.subject(),
            token_tenant = self.tenant(),
            "bearer token rejected: issued for another tenant than the route's"
        );
        Err(AuthRejection::new(
            RejectionKind::WrongTenant,
            self.realm.clone(),
        ))
    }

    /// `Ok` if `scope` was granted, else the 403 `insufficient_scope` rejection naming it.
    pub fn require(&self, scope: &str) -> Result<(), AuthRejection> {
        self.require_all(&[scope])
    }

    /// `Ok` if every one of `scopes` was granted, else the 403 rejection naming them all.
    pub fn require_all(&self, scopes: &[&str]) -> Result<(), AuthRejection> {
        if scopes.iter().all(|s| self.has_scope(s)) {
            return Ok(());
        }
        tracing::info!(sub = self.subject(), needed = ?scopes, "insufficient scope");
        // Scope tokens cannot contain `"` or `\`; anything else would break the header, so
        // such characters (which no token can have been granted) are dropped from it.
        let needed: Vec<String> = scopes
            .iter()
            .map(|s| {
                s.chars()
                    .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
                    .collect()
            })
            .collect();
        Err(AuthRejection::new(
            RejectionKind::InsufficientScope(needed.join(" ")),
            self.realm.clone(),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<AuthUser>() {
            Some(user) => Ok(user.clone()),
            None => {
                tracing::error!(
                    path = parts.uri.path(),
                    "AuthUser extracted on a route without the guard layer"
                );
                Err(AuthRejection::new(RejectionKind::NotGuarded, Arc::from("")))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<AuthUser>().cloned())
    }
}
