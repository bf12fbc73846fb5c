//! Why a token failed goes to the log, with the request's trace id, and not to the client.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use common::*;
use unilogin_axum::Guard;
use unilogin_axum::session::{SessionIssuer, SessionKeys};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn headers(request_id: &str, token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-request-id", HeaderValue::from_str(request_id).unwrap());
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

// Current-thread runtime: the thread-local subscriber sees every poll.
#[tokio::test(flavor = "current_thread")]
async fn rejection_reason_is_logged_with_the_trace_id_and_not_sent() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(out.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);

    let keys = SessionKeys::generate().unwrap();
    let guard = Guard::local(keys.clone(), ISS, AUD)
        .tenant("acme")
        .build()
        .unwrap();
    let forged = SessionIssuer::new(
        SessionKeys::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n",
            &keys.current_kid(),
        )
        .unwrap(),
        ISS,
        AUD,
        Duration::from_secs(60),
    )
    .issue(&alice(), &[])
    .unwrap()
    .token;
    let rejection = guard
        .authenticate(&headers("req-42", &forged))
        .await
        .unwrap_err();
    let expired = issuer(&keys)
        .issue_at(
            &alice(),
            &[],
            std::time::SystemTime::now() - Duration::from_secs(7200),
        )
        .unwrap()
        .token;
    guard
        .authenticate(&headers("req-43", &expired))
        .await
        .unwrap_err();

    let log = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
    let line42 = log.lines().find(|l| l.contains("req-42")).expect(&log);
    assert!(line42.contains("WARN"), "{line42}");
    assert!(line42.contains("bad signature"), "{line42}");
    let line43 = log.lines().find(|l| l.contains("req-43")).expect(&log);
    assert!(line43.contains("token expired"), "{line43}");
    assert!(!log.contains(&forged), "tokens never reach the log");
    assert!(!log.contains(&expired), "tokens never reach the log");

    let response = rejection.into_response();
    let www = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    let text = format!("{www} {}", String::from_utf8_lossy(&body));
    assert!(!text.contains("signature"), "{text}");
    assert_eq!(
        text,
        "Bearer realm=\"test-apis\", error=\"invalid_token\" {\"error\":\"invalid_token\"}"
    );
}
