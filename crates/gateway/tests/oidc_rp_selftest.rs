//! The relying parties of the OpenID Provider interop tests (issue #23), proven against a
//! certified OP first: the npm package `oidc-provider` (`tests/oidc-rp/node-op.mjs`). Both
//! relying parties — the npm `openid-client` and Python's Authlib — run the happy path (as a
//! confidential and as a public client) and the four negative cases, and must report exactly
//! what a conformant OP answers; a harness that passed here and failed against the gateway
//! points at the gateway.
//!
//! One `oidc-provider` serves the whole binary; the relying parties run concurrently. The npm
//! packages and the Python venv are installed into the cargo target's tmp dir when missing
//! (`cargo xtask ci` provisions them); without Node.js or Python the tests fail saying so.

mod oidc_rp_support;

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use oidc_rp_support::{
    Browser, BrowserReply, ClientSecret, CookieJar, NodeOp, Outcome, Rp, RpConfig, RpKind,
    RpMessage, RpMode, RpRun, TokenAuthMethod, expect, parse_http_date, redact_url,
    submit_single_form,
};
use serde_json::{Value, json};
use url::Url;

const SECRET: &str = "rp-selftest-secret-0001";

/// Nothing listens here: the browser stops at the redirect.
fn redirect_uri(client_id: &str) -> String {
    format!("http://127.0.0.1:9/{client_id}/callback")
}

fn client_ids(kind: RpKind) -> (&'static str, &'static str) {
    match kind {
        RpKind::OpenIdClient => ("oc-confidential", "oc-public"),
        RpKind::Authlib => ("al-confidential", "al-public"),
    }
}

fn op() -> &'static NodeOp {
    static OP: OnceLock<NodeOp> = OnceLock::new();
    OP.get_or_init(|| {
        let mut clients = Vec::new();
        for kind in [RpKind::OpenIdClient, RpKind::Authlib] {
            let (confidential, public) = client_ids(kind);
            // openid-client authenticates with HTTP Basic, Authlib with the form body.
            let method = match kind {
                RpKind::OpenIdClient => "client_secret_basic",
                RpKind::Authlib => "client_secret_post",
            };
            for (id, auth) in [(confidential, method), (public, "none")] {
                let mut c = json!({
                    "client_id": id,
                    "redirect_uris": [redirect_uri(id)],
                    "post_logout_redirect_uris": [format!("{}/signed-out", redirect_uri(id))],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                    "token_endpoint_auth_method": auth,
                });
                if auth != "none" {
                    c["client_secret"] = json!(SECRET);
                }
                clients.push(c);
            }
        }
        NodeOp::start(&Value::Array(clients))
    })
}

fn config(kind: RpKind, public: bool) -> RpConfig {
    let (confidential, public_id) = client_ids(kind);
    if public {
        RpConfig::public(&op().issuer, public_id, &redirect_uri(public_id))
    } else {
        let mut c = RpConfig::confidential(
            &op().issuer,
            confidential,
            SECRET,
            &redirect_uri(confidential),
        );
        if kind == RpKind::Authlib {
            c.auth_method = TokenAuthMethod::ClientSecretPost;
        }
        c
    }
}

/// The browser of these tests: oidc-provider's logout confirmation is a single form.
fn browser() -> Browser {
    Browser::new().on_page(submit_single_form)
}

async fn run(kind: RpKind, public: bool, mode: RpMode) -> (RpConfig, RpRun) {
    let config = config(kind, public);
    let mut rp = Rp::spawn(kind, config.clone(), mode);
    let run = rp.run(&browser()).await;
    (config, run)
}

fn query(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

async fn happy(kind: RpKind, public: bool) {
    let (config, run) = run(kind, public, RpMode::Happy).await;
    let r = expect::full_flow(&run, &config, &op().issuer);
    let rp_name = match kind {
        RpKind::OpenIdClient => "openid-client",
        RpKind::Authlib => "authlib",
    };
    assert_eq!(r["rp"], rp_name, "{r}");
    // node-op's account, with the profile and email scopes' claims.
    assert_eq!(r["claims"]["sub"], "zhangsan", "{r}");
    assert_eq!(r["userinfo"]["name"], "张三", "{r}");
    assert_eq!(r["userinfo"]["email"], "zhangsan@example.com", "{r}");
    assert_eq!(r["userinfo"]["email_verified"], true, "{r}");
    assert!(
        r["userinfo"].get("phone_number").is_none(),
        "no phone scope asked: {r}"
    );
}

async fn wrong_redirect_uri(kind: RpKind) {
    let (config, run) = run(kind, false, RpMode::WrongRedirectUri).await;
    expect::no_redirect(&run, &op().issuer);
    // oidc-provider's own error code.
    assert!(
        run.authorize
            .as_ref()
            .unwrap()
            .page()
            .body
            .contains("invalid_redirect_uri")
    );
    assert!(config.redirect_uri.ends_with("/callback"));
}

async fn reused_code(kind: RpKind) {
    expect::reused_code(&run(kind, false, RpMode::ReusedCode).await.1);
}

async fn wrong_secret(kind: RpKind) {
    expect::wrong_secret(&run(kind, false, RpMode::WrongSecret).await.1);
}

async fn missing_pkce(kind: RpKind) {
    expect::missing_pkce(&run(kind, true, RpMode::MissingPkce).await.1, &op().issuer);
}

rp_suite! {
    openid_client => RpKind::OpenIdClient,
    authlib => RpKind::Authlib,
}

// The harness itself.

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = RpConfig::confidential(
        "http://op.test",
        "client",
        "s3cr3t-value",
        "http://rp.test/cb",
    );
    let printed = format!("{config:?} {:?}", ClientSecret::new("s3cr3t-value"));
    assert!(!printed.contains("s3cr3t-value"), "{printed}");
    assert!(printed.contains("***"), "{printed}");

    let url = Url::parse(
        "http://rp.test/cb?code=CODE123&state=STATE456&iss=http%3A%2F%2Fop.test#id_token=TOKEN789",
    )
    .unwrap();
    let printed = format!(
        "{:?} {:?} {:?}",
        RpMessage::Authorize(url.clone()),
        BrowserReply::Callback(url.clone()),
        Outcome::Redirected(url.clone()),
    );
    for secret in ["CODE123", "STATE456", "TOKEN789"] {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
    // What is not secret stays readable.
    assert!(printed.contains("iss=http%3A%2F%2Fop.test"), "{printed}");
    assert!(redact_url(&url).starts_with("http://rp.test/cb?code=***&state=***"));
}

#[test]
fn the_secret_travels_in_the_environment_not_the_command_line() {
    let mut config = RpConfig::confidential(
        &op().issuer,
        "oc-confidential",
        SECRET,
        "http://127.0.0.1:9/cb",
    );
    config.client_secret = Some(ClientSecret::new("never-on-argv-0001"));
    for kind in [RpKind::OpenIdClient, RpKind::Authlib] {
        let (_, args) = Rp::command_line(kind, &config, RpMode::Happy);
        assert!(
            args.iter().all(|a| !a.contains("never-on-argv")),
            "{kind:?}"
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["--client-id", "oc-confidential"]),
            "{args:?}"
        );
    }
}

#[test]
fn relying_party_messages_parse_and_unknown_ones_are_refused() {
    let m = RpMessage::parse(r#"{"authorize": "http://op.test/auth?x=1"}"#).unwrap();
    assert_eq!(
        m,
        RpMessage::Authorize(Url::parse("http://op.test/auth?x=1").unwrap())
    );
    let m = RpMessage::parse(
        r#"{"error": {"code": "invalid_grant", "description": "d", "step": "token"}}"#,
    )
    .unwrap();
    let RpMessage::Error(e) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        (e.code.as_str(), e.step.as_str()),
        ("invalid_grant", "token")
    );
    assert!(
        RpMessage::parse(r#"{"authorize": 3}"#)
            .unwrap_err()
            .contains("not a string")
    );
    assert!(
        RpMessage::parse(r#"{"authorize": "not a url"}"#)
            .unwrap_err()
            .contains("not a URL")
    );
    assert!(
        RpMessage::parse(r#"{"hello": 1}"#)
            .unwrap_err()
            .contains("hello")
    );
    assert!(RpMessage::parse("nope").unwrap_err().contains("not JSON"));
}

#[test]
fn the_cookie_jar_matches_paths_and_forgets_expired_cookies() {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut jar = CookieJar::default();
    let set_at = Url::parse("http://127.0.0.1:4000/interaction/abc").unwrap();
    jar.store(
        &set_at,
        "_interaction=i1; path=/interaction/abc; httponly",
        now,
    );
    jar.store(&set_at, "_session=s1; path=/; samesite=lax", now);
    jar.store(&set_at, "dir=d1", now); // default path: /interaction
    let at = |p: &str| Url::parse(&format!("http://127.0.0.1:4000{p}")).unwrap();
    assert_eq!(
        jar.header_for(&at("/interaction/abc"), now).unwrap(),
        "_interaction=i1; dir=d1; _session=s1"
    );
    assert_eq!(
        jar.header_for(&at("/interaction/abcd"), now).unwrap(),
        "dir=d1; _session=s1"
    );
    assert_eq!(jar.header_for(&at("/auth"), now).unwrap(), "_session=s1");
    // Another host sees none of them.
    assert!(
        jar.header_for(&Url::parse("http://localhost:4000/").unwrap(), now)
            .is_none()
    );
    // Expiry: Max-Age=0, a past Expires, and a Max-Age that runs out.
    jar.store(
        &set_at,
        "_interaction=; path=/interaction/abc; max-age=0",
        now,
    );
    jar.store(&set_at, "dir=; expires=Thu, 01 Jan 1970 00:00:00 GMT", now);
    jar.store(&set_at, "short=1; path=/; Max-Age=10", now);
    assert_eq!(
        jar.header_for(&at("/interaction/abc"), now).unwrap(),
        "_session=s1; short=1"
    );
    let later = now + Duration::from_secs(11);
    assert_eq!(jar.header_for(&at("/"), later).unwrap(), "_session=s1");
    // Replacing keeps one cookie per (host, name, path).
    jar.store(&set_at, "_session=s2; path=/", now);
    assert_eq!(jar.header_for(&at("/"), later).unwrap(), "_session=s2");
}

#[test]
fn http_dates_parse_and_garbage_does_not() {
    assert_eq!(
        parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(UNIX_EPOCH)
    );
    assert_eq!(
        parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(UNIX_EPOCH + Duration::from_secs(784_111_777))
    );
    assert_eq!(
        parse_http_date("Wed, 02 Dec 2026 05:00:00 GMT"),
        Some(UNIX_EPOCH + Duration::from_secs(1_796_187_600))
    );
    for bad in [
        "",
        "yesterday",
        "Thu, 01 Foo 1970 00:00:00 GMT",
        "Thu, 01 Jan 1970 25:00:00 GMT",
        "Thu, 01 Jan 1970 00:00 GMT",
    ] {
        assert_eq!(parse_http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn forms_are_read_as_a_browser_submits_them() {
    let page = oidc_rp_support::Page {
        url: Url::parse("http://127.0.0.1:5000/login/page?x=1").unwrap(),
        status: 200,
        body: r#"<html><head><title>Approve &amp; continue</title></head><body>
            <form id="approve" method="POST" action="/login/approve">
              <input type="hidden" name="xsrf" value="a&quot;b">
              <input name=user value=zhangsan>
              <input type="checkbox" name="remember" checked>
              <input type="checkbox" name="spam" value="yes">
              <select name="tenant"><option value="a">A</option><option value="b" selected>B</option></select>
              <textarea name="note">hi &lt;there&gt;</textarea>
              <button type="button" name="noop">Cancel</button>
              <button name="decision" value="approve"><b>Approve</b></button>
            </form>
            <FORM action="https://other.test/next"><INPUT TYPE="submit" NAME="go" VALUE="Go"></FORM>
            </body></html>"#
            .to_string(),
    };
    assert_eq!(page.title().as_deref(), Some("Approve & continue"));
    let forms = page.forms();
    assert_eq!(forms.len(), 2);
    let f = &forms[0];
    assert_eq!(
        (f.method.as_str(), f.action.as_str()),
        ("post", "http://127.0.0.1:5000/login/approve")
    );
    assert_eq!(f.id.as_deref(), Some("approve"));
    let fields: Vec<(&str, &str)> = f
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("xsrf", "a\"b"),
            ("user", "zhangsan"),
            ("remember", "on"),
            ("tenant", "b"),
            ("note", "hi <there>")
        ]
    );
    assert_eq!(f.buttons.len(), 1, "type=button is not a submit button");
    let oidc_rp_support::Navigation::Post { url, fields } = f.submit_with("Approve").unwrap()
    else {
        panic!("a POST form");
    };
    assert_eq!(url.path(), "/login/approve");
    assert_eq!(
        fields.last().unwrap(),
        &("decision".to_string(), "approve".to_string())
    );
    assert!(f.submit_with("Reject").is_none());
    let oidc_rp_support::Navigation::Get(next) = forms[1].submit() else {
        panic!("a GET form");
    };
    assert_eq!(next.as_str(), "https://other.test/next?go=Go");
    // Two forms: the single-form handler does not guess.
    assert!(submit_single_form(&page).is_none());
}

#[tokio::test]
async fn the_browser_keeps_the_op_session_across_flows() {
    // A first flow signs in; the OP's session cookie is then kept, scoped to the OP's host.
    let issuer = Url::parse(&op().issuer).unwrap();
    let browser = browser();
    assert!(browser.cookies_for(&issuer).is_none());
    let mut rp = Rp::spawn(
        RpKind::OpenIdClient,
        config(RpKind::OpenIdClient, false),
        RpMode::WrongSecret,
    );
    let run = rp.run(&browser).await;
    assert_eq!(run.error().code, "invalid_client");
    let cookies = browser
        .cookies_for(&issuer.join("/auth").unwrap())
        .expect("the OP's cookies");
    assert!(
        cookies.contains("_session="),
        "{}",
        cookies
            .split("; ")
            .map(|c| c.split('=').next().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    );
    // Stopping at the first hop: the authorization endpoint redirects to the interaction.
    let browser = Browser::new().with_max_hops(1);
    let mut url = issuer.join("/auth").unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", "oc-public")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", &redirect_uri("oc-public"))
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let err = browser
        .navigate(&url, &["http://127.0.0.1:9/"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("too many hops"), "{err}");
}

/// The relying parties check the callback themselves: a forged `state` or `iss` (RFC 9207) on
/// an otherwise genuine callback is refused before any token is fetched, with the library's
/// own error, and the forged or expected values are not echoed.
async fn tampered_callback(kind: RpKind, param: &str, forged: &str) -> oidc_rp_support::RpError {
    let mut rp = Rp::spawn(kind, config(kind, false), RpMode::Happy);
    let RpMessage::Authorize(url) = rp.next_message().await else {
        panic!("the relying party did not start with the authorization request");
    };
    let stop = rp.config.redirect_uri.clone();
    let outcome = browser().navigate(&url, &[stop.as_str()]).await.unwrap();
    let mut callback = outcome.redirected().clone();
    let genuine = query(&callback, param).expect("the parameter is on the callback");
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == param {
                forged.to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    rp.send(&BrowserReply::Callback(callback)).await;
    let RpMessage::Error(e) = rp.next_message().await else {
        panic!("{kind:?} accepted a callback with a forged {param}");
    };
    assert_eq!(e.step, "authorize", "{kind:?} {param}: {e:?}");
    let printed = e.raw.to_string();
    assert!(
        !printed.contains(forged) && !printed.contains(&genuine),
        "{printed}"
    );
    e
}

#[tokio::test]
async fn forged_state_and_iss_are_refused_by_both_relying_parties() {
    let (state, iss) = tokio::join!(
        tampered_callback(RpKind::OpenIdClient, "state", "forged-state-0001"),
        tampered_callback(RpKind::OpenIdClient, "iss", "http://evil.test"),
    );
    for e in [&state, &iss] {
        assert_eq!(e.code, "OAUTH_INVALID_RESPONSE", "{e:?}");
    }
    assert!(state.description.contains("\"state\""), "{state:?}");
    assert!(iss.description.contains("\"iss\""), "{iss:?}");
    let (state, iss) = tokio::join!(
        tampered_callback(RpKind::Authlib, "state", "forged-state-0001"),
        tampered_callback(RpKind::Authlib, "iss", "http://evil.test"),
    );
    assert_eq!(state.code, "mismatching_state", "{state:?}");
    assert_eq!(iss.code, "invalid_iss", "{iss:?}");
}

#[test]
fn node_op_serves_discovery_and_stops_on_drop() {
    let op = NodeOp::start(&json!([]));
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], op.port));
    assert_eq!(op.issuer, format!("http://{addr}"));
    assert!(std::net::TcpStream::connect(addr).is_ok());
    drop(op);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "node-op still listens"
    );
}

#[tokio::test]
async fn node_op_discovery_is_production_shaped() {
    let doc: Value = reqwest::get(format!("{}/.well-known/openid-configuration", op().issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], op().issuer.as_str());
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert!(doc["end_session_endpoint"].is_string(), "{doc}");
}
