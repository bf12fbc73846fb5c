//! `GET /auth/{tenant}/{platform}/callback`: finishes a redirect login.
//!
//! The callback's `state` names the pending login, which is taken from the store **once**
//! (every attempt spends it, even a refused one); it must be unexpired and issued to this
//! browser (binding cookie, constant-time compare). The core then checks the target and the
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
use crate::cookies;
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

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn param<'a>(pairs: &'a Pairs<'_>, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// Spends the callback's state, if it names exactly one: a refused callback (platform error,
/// no code) leaves no state behind to try again with.
async fn burn(gw: &Gateway, pairs: &Pairs<'_>) {
    let mut states = pairs.iter().filter(|(k, _)| k == "state").map(|(_, v)| v);
    if let (Some(s), None) = (states.next(), states.next())
        && !s.is_empty()
        && s.len() <= MAX_STATE_LEN
    {
        let _ = gw.inner.states.take(s).await;
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
    if let Some(error) = param(pairs, "error") {
        // The platform refused (the user pressed Deny, …): burn the state, say what happened.
        burn(gw, pairs).await;
        let description = param(pairs, "error_description")
            .map(|d| format!(": {}", clip(d, 200)))
            .unwrap_or_default();
        return Err(ApiError::bad_request(
            "platform_error",
            format!(
                "{} reported `{}`{description}",
                p.platform(),
                clip(error, 64)
            ),
        ));
    }
    let callback = match Callback::from_query(pairs.iter().cloned()) {
        Ok(c) => c,
        Err(e) => {
            burn(gw, pairs).await;
            return Err(refuse(e, Flow::Web));
        }
    };
    let record = match gw.inner.states.take(callback.state.expose()).await? {
        Taken::Found(r) => *r,
        Taken::Used => return Err(refuse(Error::State(StateProblem::Reused), Flow::Web)),
        Taken::Missing => return Err(refuse(Error::State(StateProblem::Unknown), Flow::Web)),
    };
    let flow = record.login.flow;
    if now_ms() >= record.expires_at_ms {
        return Err(refuse(Error::State(StateProblem::Expired), flow));
    }
    let cookie = cookies::get(headers, &gw.config().cookies.binding_name).unwrap_or("");
    if !bool::from(cookie.as_bytes().ct_eq(record.binding.as_bytes())) {
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
