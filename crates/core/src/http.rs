//! Shared HTTP plumbing for every platform: one `reqwest` client with rustls, connect and
//! request timeouts and redirects off, a response-size cap, and JSON decoding that turns HTML,
//! empty, truncated or garbled bodies into [`Error::BadResponse`] with the HTTP status and a
//! short, secret-free excerpt.
//!
//! Platform crates build requests with [`HttpClient::request`] and send them with
//! [`HttpClient::send`]; they never see a `reqwest::Error` (whose text can contain the request
//! URL, and with it an `access_token` query parameter).

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::error::{BadBody, Error, Result, UpstreamCode, UpstreamCtx, redact_excerpt};

/// Settings of the shared HTTP client.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a whole request, body included.
    pub request_timeout: Duration,
    /// Largest response body accepted, in bytes.
    pub max_body_bytes: usize,
    /// `User-Agent` sent upstream.
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_body_bytes: 1 << 20,
            user_agent: concat!("unilogin/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// The shared HTTP client. Cheap to clone.
///
/// ```
/// use unilogin_core::http::{HttpClient, HttpConfig};
/// let http = HttpClient::new(&HttpConfig::default()).unwrap();
/// assert_eq!(http.max_body_bytes(), 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    max_body: usize,
}

/// A decoded upstream response.
#[derive(Debug, Clone)]
pub struct UpstreamResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
}

impl UpstreamResponse {
    /// Deserializes the body into `T`, or [`Error::BadResponse`] (kind `Malformed`) naming
    /// what did not fit.
    pub fn decode<T: DeserializeOwned>(&self, ctx: &UpstreamCtx) -> Result<T> {
        T::deserialize(&self.body).map_err(|e| Error::BadResponse {
            ctx: ctx.clone(),
            status: self.status,
            kind: BadBody::Malformed,
            excerpt: redact_excerpt(&format!("{e}; body: {}", self.body)),
        })
    }

    /// A header's value parsed as a number of seconds (for example `x-ogw-ratelimit-reset`
    /// or `Retry-After`).
    pub fn header_seconds(&self, name: &str) -> Option<Duration> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 86_400.0 * 31.0)
            .map(Duration::from_secs_f64)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl HttpClient {
    /// Builds the client.
    pub fn new(config: &HttpConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            // Shorter than common server keep-alive timeouts (Node: 5 s), so a pooled
            // connection the server already closed is not reused for a non-idempotent POST.
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|e| {
                Error::Internal(format!("building the HTTP client: {}", e.without_url()))
            })?;
        Ok(Self {
            client,
            max_body: config.max_body_bytes,
        })
    }

    /// The body size limit in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body
    }

    /// Starts a request.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends a request and decodes the JSON body, whatever the HTTP status (platforms put error
    /// details in the body of 4xx responses). Non-JSON bodies become [`Error::BadResponse`].
    pub async fn send(
        &self,
        ctx: &UpstreamCtx,
        request: RequestBuilder,
    ) -> Result<UpstreamResponse> {
        let started = std::time::Instant::now();
        let mut response = request.send().await.map_err(|e| transport_error(ctx, e))?;
        let status = response.status().as_u16();
        // Taken, not cloned: the body is read through `chunk`, which needs no headers.
        let headers = std::mem::take(response.headers_mut());
        if let Some(len) = response.content_length()
            && len > self.max_body as u64
        {
            return Err(too_large(ctx, status, self.max_body));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(ctx, e))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(too_large(ctx, status, self.max_body));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(
            tenant = ctx.tenant.as_ref().map(|t| t.as_str()),
            platform = %ctx.platform,
            endpoint = ctx.endpoint,
            status,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "upstream call"
        );
        let is_html = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
        let body = decode_json(ctx, status, is_html, &body)?;
        Ok(UpstreamResponse {
            status,
            headers,
            body,
        })
    }
}

fn too_large(ctx: &UpstreamCtx, status: u16, max: usize) -> Error {
    Error::BadResponse {
        ctx: ctx.clone(),
        status,
        kind: BadBody::TooLarge,
        excerpt: format!("more than {max} bytes"),
    }
}

fn transport_error(ctx: &UpstreamCtx, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        return Error::Timeout { ctx: ctx.clone() };
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport {
        ctx: ctx.clone(),
        message: redact_excerpt(&message),
    }
}

/// Decodes a body as JSON, classifying what is not.
///
/// A server error (HTTP 5xx) whose body is not JSON — the HTML error page of a reverse proxy
/// or load balancer in front of the platform (HTTP 502 / 503 / 504), an empty or plain-text
/// body — is a **transient upstream failure**, [`Error::Upstream`] with code
/// [`UpstreamCode::Http`] and `transient: true`: the platform's front is failing, not
/// answering badly, and retrying at once only adds load (the core does not retry it; a
/// gateway answers 503 with `Retry-After`). Any other body that is not JSON is
/// [`Error::BadResponse`].
///
/// ```
/// use unilogin_core::{Error, PlatformName, UpstreamCode, UpstreamCtx};
/// use unilogin_core::http::decode_json;
/// let ctx = UpstreamCtx::new(None, PlatformName::new("x").unwrap(), "user/get");
/// let page = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
/// match decode_json(&ctx, 502, true, page) {
///     Err(Error::Upstream { code: UpstreamCode::Http(502), transient: true, .. }) => {}
///     other => panic!("{other:?}"),
/// }
/// assert!(matches!(decode_json(&ctx, 200, true, page), Err(Error::BadResponse { .. })));
/// ```
pub fn decode_json(
    ctx: &UpstreamCtx,
    status: u16,
    html_content_type: bool,
    body: &[u8],
) -> Result<Value> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    let html = html_content_type || trimmed.starts_with('<');
    let kind = if trimmed.is_empty() {
        BadBody::Empty
    } else if html {
        BadBody::Html
    } else {
        match serde_json::from_str(trimmed) {
            Ok(v) => return Ok(v),
            Err(_) => BadBody::Malformed,
        }
    };
    if (500..600).contains(&status) {
        return Err(Error::Upstream {
            ctx: ctx.clone(),
            code: UpstreamCode::Http(status),
            message: format!("{kind} (the platform or a proxy in front of it is failing)"),
            transient: true,
        });
    }
    Err(Error::BadResponse {
        ctx: ctx.clone(),
        status,
        kind,
        excerpt: redact_excerpt(trimmed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::PlatformName;

    fn ctx() -> UpstreamCtx {
        UpstreamCtx::new(None, PlatformName::new("test").unwrap(), "ep")
    }

    #[test]
    fn classifies_bodies() {
        let kind = |body: &[u8], html| match decode_json(&ctx(), 200, html, body) {
            Err(Error::BadResponse { kind, .. }) => Some(kind),
            Ok(_) => None,
            Err(e) => panic!("unexpected {e}"),
        };
        assert_eq!(kind(b"", false), Some(BadBody::Empty));
        assert_eq!(kind(b"  \n", false), Some(BadBody::Empty));
        assert_eq!(
            kind(b"<html><body>busy</body></html>", false),
            Some(BadBody::Html)
        );
        assert_eq!(kind(b"{\"ok\":1}", true), Some(BadBody::Html));
        assert_eq!(
            kind(b"{\"errcode\":0,\"access", false),
            Some(BadBody::Malformed)
        );
        assert_eq!(
            kind(&[0xff, 0xfe, 0x00, 0x13], false),
            Some(BadBody::Malformed)
        );
        assert_eq!(kind(b"\xef\xbb\xbf{\"a\":1}", false), None);
    }

    #[test]
    fn server_errors_without_json_are_transient_upstream_failures() {
        for (status, body, html) in [
            (
                502,
                &b"<html><head><title>502 Bad Gateway</title></head></html>"[..],
                true,
            ),
            (503, &b"<!DOCTYPE html><p>busy</p>"[..], false),
            (504, &b""[..], false),
            (500, &b"Internal Server Error"[..], false),
        ] {
            match decode_json(&ctx(), status, html, body) {
                Err(Error::Upstream {
                    code: UpstreamCode::Http(s),
                    transient: true,
                    message,
                    ..
                }) => {
                    assert_eq!(s, status);
                    assert!(!message.contains("busy"), "no body text: {message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        // A 5xx with a JSON body is the platform's own answer: decoded for its envelope.
        assert!(decode_json(&ctx(), 503, false, b"{\"errcode\":-1}").is_ok());
        // Below 500 an HTML page stays a bad response (DingTalk's ban page is classified by
        // the platform crate).
        assert!(matches!(
            decode_json(&ctx(), 403, true, b"<html>denied</html>"),
            Err(Error::BadResponse {
                kind: BadBody::Html,
                ..
            })
        ));
    }

    #[test]
    fn excerpt_has_no_secret() {
        let body = br#"{"errcode":0,"access_token":"fake_secret_token""#;
        let e = decode_json(&ctx(), 200, false, body)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("fake_secret_token"), "{e}");
    }
}
