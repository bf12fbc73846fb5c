//! `GET /auth/{tenant}/{platform}/callback`: finishes a redirect login.
//!
//! The callback's `state` and this browser's binding cookie together name the pending login
//! (its store key is their MAC), which is taken from the store **once** (every attempt from
//! this browser spends it, even a refused one; a callback without the binding spends nothing);
//! it must be unexpired. The core then checks the target and the
//! issuer and exchanges the code with the PKCE verifier
//! ([`Prepared::finish_web_login`](unilogin::Prepared::finish_web_login)).

use std::borrow::Cow;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;
use unilogin::error::StateProblem;
use unilogin::web_login::{Callback, MAX_STATE_LEN};
use unilogin::{Error, Flow, Prepared};

use super::{Target, no_store};
use crate::app::Gateway;
use crate::cookies::{self, Binding};
use crate::error::ApiError;
use crate::store::{Taken, now_ms};

type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// `GET /auth/{tenant}/{platform}/callback`.
pub async fn callback(
    State(gw): State<Gateway>,
    target: Target,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let pairs: Pairs<'_> = url::form_urlencoded::parse(query.as_bytes()).collect();
    match finish(&gw, &target.prepared, &pairs, &headers).await {
        Ok(r) => r,
        Err(e) => e.html(target.html).into_response(),
    }
}

fn param<'a>(pairs: &'a Pairs<'_>, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// The OAuth 2.0 / OIDC error codes shown by name (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6);
/// anything else a callback carries is shown as `other`, so the page never displays text an
/// attacker put in a link.
const KNOWN_ERRORS: &[&str] = &[
    "access_denied",
    "invalid_request",
    "unauthorized_client",
    "unsupported_response_type",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "interaction_required",
    "login_required",
    "account_selection_required",
    "consent_required",
];

/// The binding cookie of this browser, if this gateway issued it.
fn binding<'a>(gw: &Gateway, headers: &'a HeaderMap) -> Option<&'a str> {
    let cfg = &gw.config().cookies;
    cookies::get(headers, &cfg.name(&cfg.binding_name))
        .filter(|b| Binding::verify(&gw.inner.binding_key, b))
}

/// The one `state` of the callback, if it has exactly one of a plausible length.
fn single_state<'a>(pairs: &'a Pairs<'_>) -> Option<&'a str> {
    let mut states = pairs.iter().filter(|(k, _)| k == "state").map(|(_, v)| v);
    match (states.next(), states.next()) {
        (Some(s), None) if !s.is_empty() && s.len() <= MAX_STATE_LEN => Some(s.as_ref()),
        _ => None,
    }
}

/// Spends the callback's state — only when this browser holds the binding it was issued to, so
/// a link with someone else's state cannot spend it: a refused callback (platform error, no
/// code) leaves nothing behind to try again with.
async fn burn(gw: &Gateway, pairs: &Pairs<'_>, binding: Option<&str>) {
    if let (Some(state), Some(binding)) = (single_state(pairs), binding) {
        let key = Binding::store_key(&gw.inner.binding_key, state, binding);
        let _ = gw.inner.states.take(&key).await;
    }
}

async fn finish(
    gw: &Gateway,
    p: &Prepared,
    pairs: &Pairs<'_>,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let refuse = |e: Error, flow: Flow| {
        gw.count(p, flow, e.kind());
        ApiError::from(e)
    };
    let binding = binding(gw, headers);
    if let Some(error) = param(pairs, "error") {
        // The platform refused (the user pressed Deny, …): burn this browser's state, and say
        // what happened in fixed words with an allow-listed code (never the link's text).
        burn(gw, pairs, binding).await;
        let code = KNOWN_ERRORS
            .iter()
            .find(|k| **k == error)
            .copied()
            .unwrap_or("other");
        gw.count(p, Flow::Web, "platform_error");
        return Err(ApiError::bad_request(
            "platform_error",
            format!(
                "{} did not complete the sign-in (error `{code}`); start the login again",
                p.platform()
            ),
        ));
    }
    let callback = match Callback::from_query(pairs.iter().cloned()) {
        Ok(c) => c,
        Err(e) => {
            burn(gw, pairs, binding).await;
            return Err(refuse(e, Flow::Web));
        }
    };
    // Without this browser's binding the pending login cannot even be named: the store key is a
    // MAC of state and binding. A state from another browser is left untouched for its owner.
    let Some(binding) = binding else {
        return Err(refuse(Error::State(StateProblem::WrongBrowser), Flow::Web));
    };
    let key = Binding::store_key(&gw.inner.binding_key, callback.state.expose(), binding);
    let record = match gw.inner.states.take(&key).await? {
        Taken::Found(r) => *r,
        Taken::Used => return Err(refuse(Error::State(StateProblem::Reused), Flow::Web)),
        Taken::Missing => return Err(refuse(Error::State(StateProblem::Unknown), Flow::Web)),
    };
    let flow = record.login.flow;
    if now_ms() >= record.expires_at_ms {
        return Err(refuse(Error::State(StateProblem::Expired), flow));
    }
    // The key already proved it; compared again so a store that mixed records up fails closed.
    if !bool::from(binding.as_bytes().ct_eq(record.binding.as_bytes())) {
        return Err(refuse(Error::State(StateProblem::WrongBrowser), flow));
    }
    // Web/QR and in-client OAuth logins alike: the core checks the target and the issuer, then
    // exchanges the code with the verifier. The metric keeps the flow the login started with.
    let login = gw
        .run_login(p, flow, p.finish_web_login(&record.login, &callback))
        .await?;
    let (_, cookie) = gw.session_for(p, &login.profile).await?;
    let mut r = Redirect::to(record.return_to.as_str()).into_response();
    let h = r.headers_mut();
    h.insert(header::SET_COOKIE, cookie);
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(no_store(r))
}
