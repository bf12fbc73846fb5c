//! Shared by the provider tests: a `MemoryHost` (the gateway's part, in memory), a provider
//! with RS256 / ES256 / EdDSA keys, a browser that keeps one cookie, and PKCE helpers.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_lc_rs::digest::{SHA256, digest};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use unilogin_axum::session::{MemoryRevocationList, SessionIssuer, SessionKeys, SigningAlg};
use unilogin_core::{PlatformName, TenantId, UserProfile};
use unilogin_provider::{
    Authenticated, Client, Host, LoginRequest, MemoryGrantStore, Provider, ProviderError, Settings,
    StaticClients, sha256_hex,
};
use url::Url;

pub const ISSUER: &str = "http://127.0.0.1:9/sso";
pub const SECRET: &str = "4f1c0d7e9b2a8c3f5e6d7a8b9c0d1e2f-test-secret";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// The S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// What the host knows: sessions by cookie value, the person the next login signs in, and
/// every login it was asked for.
#[derive(Default)]
pub struct HostState {
    pub sessions: HashMap<String, Authenticated>,
    pub logins: Vec<LoginRequest>,
    pub ended: Vec<String>,
    pub next_sid: u32,
}

/// The gateway's part, in memory: `login` signs `profile` in at once (a fresh `auth_time`)
/// and redirects to the resume URL with a `sess` cookie.
#[derive(Clone)]
pub struct MemoryHost {
    pub state: Arc<Mutex<HostState>>,
    pub profile: Arc<Mutex<UserProfile>>,
    pub platforms: Vec<PlatformName>,
}

pub fn profile(tenant: &str, platform: &str, user: &str) -> UserProfile {
    serde_json::from_value(json!({
        "platform": platform, "tenant": tenant, "user_id": user, "name": "Zhang San",
        "email": "zhang@example.com", "email_verified": true, "mobile": "13800000000",
        "mobile_country_code": "86", "avatar": "https://img.example/a.png",
        "department_ids": ["10", "20"],
    }))
    .unwrap()
}

impl MemoryHost {
    pub fn new(platforms: &[&str]) -> Self {
        Self {
            state: Arc::default(),
            profile: Arc::new(Mutex::new(profile("acme", platforms[0], "u1"))),
            platforms: platforms
                .iter()
                .map(|p| PlatformName::new(p).unwrap())
                .collect(),
        }
    }

    /// Signs `profile` in with `auth_time`, returning the cookie value.
    pub fn sign_in(&self, profile: &UserProfile, auth_time: SystemTime) -> String {
        let mut st = self.state.lock().unwrap();
        st.next_sid += 1;
        let sid = format!("sid-{}", st.next_sid);
        let auth = Authenticated {
            profile: profile.clone(),
            tenant: profile.tenant.clone(),
            platform: profile.platform.clone(),
            subject: format!(
                "{}:{}:{}",
                profile.tenant, profile.platform, profile.subject.value
            ),
            account: None,
            auth_time,
            sid: sid.clone(),
        };
        st.sessions.insert(sid.clone(), auth);
        sid
    }

    pub fn logins(&self) -> Vec<LoginRequest> {
        self.state.lock().unwrap().logins.clone()
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|c| c.trim().strip_prefix("sess=").map(str::to_string))
}

#[async_trait]
impl Host for MemoryHost {
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Authenticated>, ProviderError> {
        let Some(c) = cookie(headers) else {
            return Ok(None);
        };
        Ok(self.state.lock().unwrap().sessions.get(&c).cloned())
    }

    async fn login(&self, request: LoginRequest) -> Result<Response, ProviderError> {
        let mut profile = self.profile.lock().unwrap().clone();
        if let Some(p) = &request.platform {
            profile.platform = p.clone();
        }
        profile.tenant = request.tenant.clone();
        let resume = request.resume.clone();
        self.state.lock().unwrap().logins.push(request);
        let sid = self.sign_in(&profile, SystemTime::now());
        let mut r = Redirect::to(resume.as_str()).into_response();
        r.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_str(&format!("sess={sid}; Path=/; HttpOnly")).unwrap(),
        );
        Ok(r)
    }

    async fn platforms(&self, _tenant: &TenantId) -> Result<Vec<PlatformName>, ProviderError> {
        Ok(self.platforms.clone())
    }

    async fn end_session(&self, headers: &HeaderMap) -> Result<HeaderMap, ProviderError> {
        let mut out = HeaderMap::new();
        if let Some(c) = cookie(headers) {
            let mut st = self.state.lock().unwrap();
            st.sessions.remove(&c);
            st.ended.push(c);
            out.insert(
                header::SET_COOKIE,
                HeaderValue::from_static("sess=; Path=/; Max-Age=0"),
            );
        }
        Ok(out)
    }
}

pub fn client(v: Value) -> Client {
    serde_json::from_value(v).unwrap()
}

/// The clients every test knows:
/// - `spa`: public, `http://127.0.0.1:8400/cb`;
/// - `web`: confidential (Basic), `https://rp.example/cb`, back-channel at `backchannel`;
/// - `post`: confidential (`client_secret_post`), ES256 id tokens, pairwise, `https://a.example/cb`;
/// - `pair2`: public, pairwise, EdDSA, `https://b.example/cb`.
pub fn clients(backchannel: Option<&str>) -> Vec<Client> {
    let mut web = json!({
        "client_id": "web",
        "client_secret_sha256": sha256_hex(SECRET),
        "redirect_uris": ["https://rp.example/cb"],
        "post_logout_redirect_uris": ["https://rp.example/bye"],
        "tenants": ["acme", "beta"],
        "scopes": ["openid", "profile", "email", "phone", "offline_access", "unilogin"],
    });
    if let Some(b) = backchannel {
        web["backchannel_logout_uri"] = json!(b);
    }
    vec![
        client(json!({
            "client_id": "spa",
            "redirect_uris": ["http://127.0.0.1:8400/cb"],
            "tenants": ["acme"],
        })),
        client(web),
        client(json!({
            "client_id": "post",
            "client_secret_sha256": sha256_hex(SECRET),
            "token_endpoint_auth_method": "client_secret_post",
            "redirect_uris": ["https://a.example/cb"],
            "tenants": ["acme"],
            "id_token_signed_response_alg": "ES256",
            "subject_type": "pairwise",
            "refresh_without_offline_access": true,
        })),
        client(json!({
            "client_id": "pair2",
            "redirect_uris": ["https://b.example/cb"],
            "tenants": ["acme"],
            "id_token_signed_response_alg": "EdDSA",
            "subject_type": "pairwise",
        })),
    ]
}

pub struct Harness {
    pub provider: Provider,
    pub host: MemoryHost,
    pub revocations: Arc<MemoryRevocationList>,
    pub access: SessionIssuer,
    /// `sess=…` after a login.
    pub cookie: Option<String>,
}

pub fn settings() -> Settings {
    let mut s = Settings::default();
    s.backchannel = s
        .backchannel
        .clone()
        .with_retries(4, Duration::from_millis(50));
    s
}

pub async fn harness_with(platforms: &[&str], backchannel: Option<&str>, s: Settings) -> Harness {
    let host = MemoryHost::new(platforms);
    let revocations = Arc::new(MemoryRevocationList::new());
    let access = SessionIssuer::new(
        SessionKeys::generate().unwrap(),
        ISSUER,
        "gateway",
        Duration::from_secs(600),
    );
    let provider = Provider::builder(
        ISSUER.parse().unwrap(),
        Arc::new(StaticClients::new(clients(backchannel)).unwrap()),
        Arc::new(MemoryGrantStore::new()),
        Arc::new(host.clone()),
        access.clone(),
        revocations.clone(),
    )
    .id_token_keys(SessionKeys::generate_alg(SigningAlg::Rs256).unwrap())
    .id_token_keys(SessionKeys::generate_alg(SigningAlg::Es256).unwrap())
    .id_token_keys(SessionKeys::generate_alg(SigningAlg::EdDSA).unwrap())
    .pairwise_secret([7; 32])
    .settings(s)
    .build()
    .unwrap();
    Harness {
        provider,
        host,
        revocations,
        access,
        cookie: None,
    }
}

pub async fn harness() -> Harness {
    harness_with(&["dingtalk"], None, settings()).await
}

/// An answer, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    pub fn location(&self) -> Url {
        let l = self
            .headers
            .get(header::LOCATION)
            .unwrap_or_else(|| panic!("no Location ({}): {}", self.status, self.body));
        Url::parse(l.to_str().unwrap()).unwrap()
    }

    pub fn header(&self, name: header::HeaderName) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }
}

/// The query parameter `name` of `url`.
pub fn param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl Harness {
    pub async fn send(&mut self, req: Request<Body>) -> Answer {
        let r = self.provider.router().oneshot(req).await.unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        if let Some(c) = headers.get(header::SET_COOKIE) {
            let c = c.to_str().unwrap();
            let v = c.split(';').next().unwrap().to_string();
            self.cookie = if v == "sess=" { None } else { Some(v) };
        }
        let body = r.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// A browser GET of `path_and_query` (under the issuer's host) with the cookie.
    pub async fn get(&mut self, path_and_query: &str) -> Answer {
        let mut b = Request::get(path_and_query);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::empty()).unwrap()).await
    }

    /// A browser GET of an absolute URL the provider redirected to.
    pub async fn follow(&mut self, url: &Url) -> Answer {
        let mut pq = url.path().to_string();
        if let Some(q) = url.query() {
            pq.push('?');
            pq.push_str(q);
        }
        self.get(&pq).await
    }

    /// A form POST to `path`, with Basic credentials when given.
    pub async fn post_form(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Answer {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut b =
            Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            b = b.header(
                header::AUTHORIZATION,
                format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
            );
        }
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, c);
        }
        self.send(b.body(Body::from(body)).unwrap()).await
    }

    /// `/sso/oidc/authorize?…` with `pairs`.
    pub async fn authorize(&mut self, pairs: &[(&str, &str)]) -> Answer {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.get(&format!("/sso/oidc/authorize?{q}")).await
    }

    /// Authorize (logging in through the host when asked) and return the final redirect to
    /// the client.
    pub async fn authorize_through(&mut self, pairs: &[(&str, &str)]) -> Url {
        let mut a = self.authorize(pairs).await;
        for _ in 0..3 {
            assert!(
                a.status.is_redirection(),
                "expected a redirect, got {}: {}",
                a.status,
                a.body
            );
            let l = a.location();
            if l.path().ends_with("/oidc/resume") {
                a = self.follow(&l).await;
            } else {
                return l;
            }
        }
        panic!("too many redirects");
    }

    /// The code flow for public client `spa` with PKCE: the code.
    pub async fn spa_code(&mut self, scope: &str) -> String {
        let ch = challenge(VERIFIER);
        let l = self
            .authorize_through(&[
                ("client_id", "spa"),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("response_type", "code"),
                ("scope", scope),
                ("state", "st-1"),
                ("nonce", "n-1"),
                ("code_challenge", &ch),
                ("code_challenge_method", "S256"),
            ])
            .await;
        param(&l, "code").unwrap_or_else(|| panic!("no code in {l}"))
    }

    /// Redeems `code` for `spa`.
    pub async fn spa_token(&mut self, code: &str) -> Answer {
        self.post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("client_id", "spa"),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await
    }

    /// The code flow for `web` (Basic), returning the token answer.
    pub async fn web_tokens(&mut self, scope: &str) -> Value {
        let l = self
            .authorize_through(&[
                ("client_id", "web"),
                ("redirect_uri", "https://rp.example/cb"),
                ("response_type", "code"),
                ("scope", scope),
                ("nonce", "n-web"),
            ])
            .await;
        let code = param(&l, "code").unwrap();
        let t = self
            .post_form(
                "/sso/oidc/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "https://rp.example/cb"),
                ],
                Some(("web", SECRET)),
            )
            .await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.body);
        t.json()
    }

    /// `GET /sso/oidc/userinfo` with `token`.
    pub async fn userinfo(&mut self, token: &str) -> Answer {
        let req = Request::get("/sso/oidc/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        self.send(req).await
    }

    /// The JWKS the provider publishes.
    pub async fn jwks(&mut self) -> jsonwebtoken::jwk::JwkSet {
        let a = self.get("/sso/oidc/jwks").await;
        assert_eq!(a.status, StatusCode::OK);
        serde_json::from_str(&a.body).unwrap()
    }
}

/// Verifies `token` against `jwks` with `jsonwebtoken` (issuer, audience, expiry).
pub fn verify_jwt(token: &str, jwks: &jsonwebtoken::jwk::JwkSet, aud: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[aud]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("token does not verify: {e:?}"))
        .claims
}
