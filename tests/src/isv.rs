//! A store app's event receiver, as the gateway runs one, for the platform crates' store-app
//! tests: every push is opened with the app's [`EventCodec`] (query parameters and headers as
//! sent), a pushed ticket is offered to the [`TicketStore`] (the `Sso`'s), every store-app
//! change is recorded, and the answer is the codec's acknowledgement (the handshake's reply
//! for a URL check; HTTP 400 with the error for a push the codec refuses).
//!
//! ```no_run
//! # async fn demo(codec: std::sync::Arc<dyn unilogin_core::events::EventCodec>, sso: unilogin_core::Sso) {
//! use unilogin_conformance::isv::TicketReceiver;
//! let rx = TicketReceiver::start(codec, sso.ticket_store().clone()).await;
//! // Point the fake's pushes at `rx.url`; read what arrived in `rx.seen`.
//! println!("{}", rx.url);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use unilogin_core::events::{EventCodec, EventRequest, Inbound, StoreAppChange};
use unilogin_core::isv::TicketStore;

/// A running receiver: its URL and the store-app changes it saw, in arrival order.
#[derive(Clone)]
pub struct TicketReceiver {
    /// Where the platform's fake pushes (`http://127.0.0.1:PORT/events`).
    pub url: String,
    /// Every store-app change of every accepted push, the tickets included.
    pub seen: Arc<Mutex<Vec<StoreAppChange>>>,
    codec: Arc<dyn EventCodec>,
    tickets: Arc<dyn TicketStore>,
}

impl TicketReceiver {
    /// Starts a receiver on a loopback port (it runs until the test's runtime ends).
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start(codec: Arc<dyn EventCodec>, tickets: Arc<dyn TicketStore>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let rx = Self {
            url: format!("http://{addr}/events"),
            seen: Arc::default(),
            codec,
            tickets,
        };
        let router = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(rx.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        rx
    }

    /// The changes seen so far (a copy).
    pub fn changes(&self) -> Vec<StoreAppChange> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn receive(
    State(rx): State<TicketReceiver>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut request = EventRequest::new("POST", &body);
    for (k, v) in &query {
        request = request.query(k, v);
    }
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let event = match rx.codec.open(&request) {
        Ok(Inbound::Event(event)) => event,
        Ok(Inbound::Handshake(h)) => return (StatusCode::OK, h.reply.into_body()),
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string().into()),
    };
    let changes = match rx.codec.store_app_changes(&event) {
        Ok(changes) => changes,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string().into()),
    };
    for change in changes {
        if let StoreAppChange::TicketPushed { app, ticket } = &change
            && let Err(e) = rx.tickets.offer(app, ticket.clone()).await
        {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string().into());
        }
        rx.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(change);
    }
    (StatusCode::OK, rx.codec.acknowledge(&event).into_body())
}
