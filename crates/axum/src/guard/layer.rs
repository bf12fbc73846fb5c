//! Tower layers: the guard itself and per-route required scopes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::Request;
use axum::response::{IntoResponse, Response};
use tower_layer::Layer;
use tower_service::Service;

use super::Guard;
use super::rejection::{AuthRejection, RejectionKind};
use super::user::AuthUser;
use crate::session::{SessionError, is_valid_scope};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S> Layer<S> for Guard {
    type Service = GuardService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GuardService {
            guard: self.clone(),
            inner,
        }
    }
}

/// The service made by the [`Guard`] layer: authenticates, then calls the inner service with
/// the [`AuthUser`] in the request's extensions, or answers with the [`AuthRejection`].
#[derive(Clone, Debug)]
pub struct GuardService<S> {
    guard: Guard,
    inner: S,
}

impl<S, B> Service<Request<B>> for GuardService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Call the instance that was polled ready; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard.authenticate(request.headers()).await {
                Ok(user) => {
                    request.extensions_mut().insert(user);
                    inner.call(request).await
                }
                Err(rejection) => Ok(rejection.into_response()),
            }
        })
    }
}

/// A layer that requires scopes on the routes it wraps: 403 `insufficient_scope` (naming the
/// scopes) unless the token grants every one of them. Put it inside the [`Guard`] layer, e.g.
/// on one route: `post(handler).layer(RequireScopes::new(["admin:write"]))`.
///
/// ```
/// use axum::{Router, routing::{get, post}};
/// use unilogin_axum::{Guard, RequireScopes, session::SessionKeys};
/// # async fn list() {} async fn delete() {}
/// let guard = Guard::local(SessionKeys::generate().unwrap(), "https://login.example.com", "apis")
///     .tenant("acme")
///     .build().unwrap();
/// let app: Router = Router::new()
///     .route("/users", get(list))
///     .route("/admin/delete", post(delete).layer(RequireScopes::new(["admin:write"])))
///     .layer(guard);
/// ```
#[derive(Clone, Debug)]
pub struct RequireScopes {
    scopes: Arc<[String]>,
}

impl RequireScopes {
    /// Requires every scope in `scopes`.
    ///
    /// # Panics
    /// If a scope is not a valid scope token (empty, or containing a space, `"`, `\` or a
    /// non-printable or non-ASCII character): such a route could never be reached, which is a
    /// programming mistake best caught at start-up. [`try_new`](Self::try_new) returns the
    /// error instead.
    pub fn new<I, T>(scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        match Self::try_new(scopes) {
            Ok(layer) => layer,
            Err(e) => panic!("RequireScopes::new: {e}"),
        }
    }

    /// Requires every scope in `scopes`, or says which one is not a valid scope token.
    pub fn try_new<I, T>(scopes: I) -> Result<Self, SessionError>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        if let Some(bad) = scopes.iter().find(|s| !is_valid_scope(s)) {
            return Err(SessionError::InvalidScope(bad.clone()));
        }
        Ok(Self {
            scopes: scopes.into(),
        })
    }

    /// The required scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    fn check<B>(&self, request: &Request<B>) -> Result<(), AuthRejection> {
        let Some(user) = request.extensions().get::<AuthUser>() else {
            tracing::error!(
                path = request.uri().path(),
                "RequireScopes on a route without the guard layer"
            );
            return Err(AuthRejection::new(RejectionKind::NotGuarded, Arc::from("")));
        };
        let needed: Vec<&str> = self.scopes.iter().map(String::as_str).collect();
        user.require_all(&needed)
    }
}

impl<S> Layer<S> for RequireScopes {
    type Service = RequireScopesService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopesService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service made by [`RequireScopes`].
#[derive(Clone, Debug)]
pub struct RequireScopesService<S> {
    layer: RequireScopes,
    inner: S,
}

impl<S, B> Service<Request<B>> for RequireScopesService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.layer.check(&request) {
            Ok(()) => {
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(request).await })
            }
            Err(rejection) => {
                let response = rejection.into_response();
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_required_scopes_are_refused() {
        assert!(RequireScopes::try_new(["admin:write", "user:read"]).is_ok());
        assert_eq!(
            RequireScopes::try_new(["a b"]).unwrap_err(),
            SessionError::InvalidScope("a b".into())
        );
        assert!(RequireScopes::try_new([""]).is_err());
        assert!(RequireScopes::try_new(["x\"y"]).is_err());
    }

    #[test]
    #[should_panic(expected = "RequireScopes::new")]
    fn new_panics_on_an_invalid_scope() {
        let _ = RequireScopes::new(["not valid"]);
    }
}
