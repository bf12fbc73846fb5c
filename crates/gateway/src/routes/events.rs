//! The platform event receiver: `POST /events/{tenant}/{platform}` (and `GET` for the URL
//! verification of platforms that use one, WeCom's `echostr`).
//!
//! Per request: the tenant's codec (its `events` credentials, built once per configuration
//! revision) verifies and decrypts ([`EventCodec::open`]); a handshake is answered at once; an
//! event is checked against the timestamp window, turned into directory changes, then — in this
//! order, so nothing accepted is lost — a queue slot is reserved, the event id recorded in the
//! shared store (SET-if-absent), the work sent, and the platform acknowledged
//! ([`EventCodec::acknowledge`]): well within the platforms' deadlines (WeCom 1000 ms, Feishu
//! 1 s), since nothing but the store is called before the answer. A full queue or an
//! unreachable store answers 503 (the platform retries); a replay is acknowledged and dropped.
//!
//! Refusals carry the codec's [`EventError::http_status`] and [`EventError::kind`]; the log
//! line names the tenant, platform and kind, never anything of the request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use unilogin::events::{EventCodec, EventError, EventRequest, Inbound, Reply};
use unilogin::{Error, Registry, TenantId};

use crate::app::Gateway;
use crate::error::ApiError;
use crate::events::{Job, dedupe_key};

/// The answer to an unknown tenant, an unknown platform, and a tenant without `events`: the
/// same 404, so the public cannot list tenants.
fn no_receiver() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such event receiver: check the tenant and platform in the URL",
    )
}

fn refused(e: &EventError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    // The error's text is fixed words (no request data).
    ApiError::new(status, e.kind(), e.to_string())
}

fn reply(r: Reply) -> Response {
    let content_type = HeaderValue::from_static(r.content_type);
    let mut response = (StatusCode::OK, r.into_body()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    super::no_store(response)
}

/// The tenant's codec for `platform`, or the 404.
async fn codec_for(
    gw: &Gateway,
    tenant: &str,
    platform: &str,
) -> Result<(TenantId, &'static str, Arc<dyn EventCodec>), ApiError> {
    let registration = Registry::get(platform).map_err(|_| no_receiver())?;
    let tenant = TenantId::new(tenant).map_err(|_| no_receiver())?;
    // Events are received whether or not new logins are enabled: a leaver must lose the
    // sessions they already have.
    let config = match gw
        .sso()
        .config_source()
        .get(&tenant, registration.name)
        .await
    {
        Ok(c) => c,
        Err(
            e @ (Error::UnknownTenant { .. }
            | Error::UnknownPlatform { .. }
            | Error::PlatformNotConfigured { .. }),
        ) => {
            tracing::info!(error = %e, kind = e.kind(), "no such event receiver");
            return Err(no_receiver());
        }
        Err(e) => return Err(e.into()),
    };
    match gw.inner.events.codec(&config, registration.name)? {
        Some(codec) => Ok((tenant, registration.name, codec)),
        None => {
            tracing::info!(%tenant, platform = registration.name, "event received but no `events` configured");
            Err(no_receiver())
        }
    }
}

/// `GET`/`POST /events/{tenant}/{platform}`.
pub async fn receive(
    State(gw): State<Gateway>,
    Path((tenant, platform)): Path<(String, String)>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let metrics = &gw.inner.metrics;
    let (tenant, platform, codec) = match codec_for(&gw, &tenant, &platform).await {
        Ok(found) => found,
        Err(e) => {
            metrics.event("-", "not_found");
            return Err(e);
        }
    };
    let pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes()).collect();
    let mut request = EventRequest::new(method.as_str(), &body);
    for (name, value) in &pairs {
        request = request.query(name, value);
    }
    for (name, value) in &headers {
        if let Ok(v) = value.to_str() {
            request = request.header(name.as_str(), v);
        }
    }
    let fail = |e: EventError| {
        tracing::info!(%tenant, platform, kind = e.kind(), "event callback refused");
        metrics.event(platform, e.kind());
        refused(&e)
    };
    let event = match codec.open(&request).map_err(fail)? {
        Inbound::Handshake(h) => {
            tracing::info!(%tenant, platform, "event URL verification answered");
            metrics.event(platform, "handshake");
            return Ok(reply(h.reply));
        }
        Inbound::Event(event) => event,
    };
    let events = &gw.inner.events;
    event
        .check_window(SystemTime::now(), events.window)
        .map_err(fail)?;
    let changes = codec.changes(&event).map_err(fail)?;
    let store_app = codec.store_app_changes(&event).map_err(fail)?;
    let ack = codec.acknowledge(&event);
    if changes.is_empty() && store_app.is_empty() {
        tracing::debug!(%tenant, platform, event_type = %event.event_type, "event without directory changes acknowledged");
        metrics.event(platform, "ignored");
        return Ok(reply(ack));
    }
    // Capacity first: once the id is recorded, the work must have a place.
    let Some(slot) = events.queue.reserve() else {
        tracing::warn!(%tenant, platform, "event queue full: 503, the platform retries");
        metrics.event(platform, "queue_full");
        return Err(ApiError::unavailable(
            "queue_full",
            "too many events waiting; retry later",
        ));
    };
    let key = dedupe_key(tenant.as_str(), platform, &event.dedupe_key());
    match events.dedupe.first_seen(&key, events.dedupe_ttl).await {
        Ok(true) => {
            slot.send(Job {
                tenant: tenant.clone(),
                platform,
                changes,
                store_app,
                received,
            });
            tracing::info!(%tenant, platform, event_type = %event.event_type, "event accepted");
            metrics.event(platform, "accepted");
            Ok(reply(ack))
        }
        Ok(false) => {
            tracing::info!(%tenant, platform, event_type = %event.event_type, "replayed event acknowledged, not applied again");
            metrics.event(platform, "replay");
            Ok(reply(ack))
        }
        Err(e) => {
            tracing::warn!(%tenant, platform, error = %e, "event id not recorded (store unreachable): 503, the platform retries");
            metrics.event(platform, "store_unavailable");
            Err(ApiError::unavailable(
                "store_unavailable",
                "events cannot be de-duplicated right now (the state store is unreachable); retry later",
            ))
        }
    }
}

/// `GET /webhook/deliveries` (operations listener): the webhook's delivery log, oldest first.
pub async fn deliveries(State(gw): State<Gateway>) -> Response {
    let log = gw.inner.webhook.deliveries();
    super::no_store(
        axum::Json(serde_json::json!({
            "queued": gw.inner.webhook.queued(),
            "items": log,
        }))
        .into_response(),
    )
}
