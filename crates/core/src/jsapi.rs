//! JSAPI signatures: what a page inside a platform's client needs before it may call most JSAPIs
//! (`dd.config`, `h5sdk.config`, `wx.config` / `wx.agentConfig`).
//!
//! The server fetches a **ticket** with the app token, caches it, and signs the exact page URL:
//!
//! ```text
//! signature = lowercase_hex(sha1("jsapi_ticket=" + ticket + "&noncestr=" + nonce
//!                                 + "&timestamp=" + timestamp + "&url=" + url))
//! ```
//!
//! The algorithm is the same on every platform ([`sign`]); what differs is which ticket is
//! used ([`TicketKind`]), the timestamp's unit ([`TimestampUnit`]) and the object the
//! platform's JS SDK expects, which each platform builds
//! ([`Platform::jsapi_object`](crate::Platform::jsapi_object)).
//!
//! # Page URLs
//! The URL signed must be byte for byte what the client sees (`location.href.split('#')[0]`):
//! scheme, host, port, path, trailing slash, query order and percent-encoding all count.
//! [`PageUrl::parse`] therefore removes `#` and what follows and keeps everything else exactly
//! as given — it never decodes, re-encodes or re-serialises — and only *checks* the URL: an
//! absolute `http` / `https` URL of at most [`MAX_PAGE_URL_LEN`] bytes, without credentials,
//! whitespace, control characters or backslashes. Anything else is
//! [`Error::InvalidPageUrl`] before any ticket is fetched. Send the URL from the page
//! (`location.href`), not one rebuilt on the server.
//!
//! # Tickets
//! A ticket is cached in the same [`TokenCache`](crate::token_cache::TokenCache) as the app
//! token (refreshed ahead of expiry, fetched once per app across replicas sharing a store,
//! compare-and-delete invalidation), under a key derived from the app token's key **and the app
//! token it was fetched with** ([`TokenKey::ticket`](crate::token_cache::TokenKey::ticket)):
//! when the app token is replaced, the next signature fetches a ticket with the new one.
//! [`Prepared::jsapi_config`](crate::Prepared::jsapi_config) runs the whole thing;
//! [`Prepared::invalidate_ticket`](crate::Prepared::invalidate_ticket) forgets a ticket a
//! client reports as rejected.
//!
//! ```
//! use unilogin_core::jsapi::{PageUrl, sign, sign_page};
//! use unilogin_core::AccessToken;
//!
//! let url = PageUrl::parse("https://app.example.com/h5/index?x=1&y=2#/route").unwrap();
//! assert_eq!(url.as_str(), "https://app.example.com/h5/index?x=1&y=2");
//! assert_eq!(url.origin(), "https://app.example.com");
//! let bare = sign("TICKET_EXAMPLE_001", "nonce0001", 1_700_000_000, url.as_str());
//! let ticket = AccessToken::new("TICKET_EXAMPLE_001");
//! let signed = sign_page(&ticket, url, "nonce0001".into(), 1_700_000_000);
//! assert_eq!(signed.signature, "961c314208f6b164c6d5306e92c0bc371ce2d84f");
//! assert_eq!(signed.signature, bare);
//! ```

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha1::{Digest as _, Sha1};

use crate::error::{Error, Result};
use crate::types::AccessToken;

/// The longest page URL signed, in bytes (browsers send longer ones, but no platform signs
/// them reliably and a bound keeps a hostile caller from making the server hash megabytes).
pub const MAX_PAGE_URL_LEN: usize = 4096;

/// The length of a nonce made by [`nonce`].
pub const NONCE_LEN: usize = 16;

/// The longest nonce accepted back from a client (in a rejection report).
pub const MAX_NONCE_LEN: usize = 64;

/// Which ticket signs a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketKind {
    /// The app's (corp's) JSAPI ticket: DingTalk `jsapiTicket` (`dd.config`), Feishu jssdk
    /// ticket (`h5sdk.config`), WeCom corp `jsapi_ticket` (`wx.config`).
    Jsapi,
    /// WeCom's app ticket (`ticket/get?type=agent_config`, for `wx.agentConfig`).
    AgentConfig,
}

impl TicketKind {
    /// Every kind.
    pub const ALL: [TicketKind; 2] = [TicketKind::Jsapi, TicketKind::AgentConfig];

    /// `"jsapi"` or `"agent_config"` (cache keys, query parameters, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            TicketKind::Jsapi => "jsapi",
            TicketKind::AgentConfig => "agent_config",
        }
    }

    /// The kind named `name` ([`as_str`](Self::as_str)), if any.
    ///
    /// ```
    /// use unilogin_core::jsapi::TicketKind;
    /// assert_eq!(TicketKind::parse("agent_config"), Some(TicketKind::AgentConfig));
    /// assert_eq!(TicketKind::parse("jsapi"), Some(TicketKind::Jsapi));
    /// assert_eq!(TicketKind::parse("JSAPI"), None);
    /// ```
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for TicketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of the timestamp a platform's JS SDK expects (and that is signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimestampUnit {
    /// Seconds since the Unix epoch (DingTalk, WeCom).
    #[default]
    Seconds,
    /// Milliseconds since the Unix epoch (Feishu's `h5sdk.config`).
    Milliseconds,
}

impl TimestampUnit {
    /// Now, in this unit (0 on a clock set before 1970).
    ///
    /// ```
    /// use unilogin_core::jsapi::TimestampUnit;
    /// let (s, ms) = (TimestampUnit::Seconds.now(), TimestampUnit::Milliseconds.now());
    /// assert!(s > 1_600_000_000 && ms / 1000 >= s);
    /// ```
    pub fn now(self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        match self {
            TimestampUnit::Seconds => since.as_secs(),
            TimestampUnit::Milliseconds => u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Why a page URL was refused ([`Error::InvalidPageUrl`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageUrlProblem {
    /// Nothing before the `#`.
    Empty,
    /// Longer than [`MAX_PAGE_URL_LEN`] bytes (after the fragment is removed).
    TooLong,
    /// Not an absolute `http://` or `https://` URL (lower-case scheme, as browsers report it).
    NotHttp,
    /// It does not parse as a URL with a host.
    Malformed,
    /// It carries a user name or password.
    Credentials,
    /// It contains whitespace, a control character or a backslash, which a browser's
    /// `location.href` never does (and which URL parsers silently drop or rewrite).
    Characters,
}

impl fmt::Display for PageUrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageUrlProblem::Empty => "is empty",
            PageUrlProblem::TooLong => "is too long (at most 4096 bytes)",
            PageUrlProblem::NotHttp => "is not an absolute http(s) URL",
            PageUrlProblem::Malformed => "is malformed or has no host",
            PageUrlProblem::Credentials => "must not carry a user name or password",
            PageUrlProblem::Characters => {
                "contains whitespace, control characters or backslashes (send location.href as is)"
            }
        })
    }
}

/// A page URL to sign: the URL exactly as the browser reports it, without its fragment.
///
/// `Debug` shows the origin and path but never the query (it may carry a login code or state,
/// as WeCom's in-client OAuth redirect does).
///
/// ```
/// use unilogin_core::jsapi::{PageUrl, PageUrlProblem};
/// use unilogin_core::Error;
/// // Encoding is kept exactly; only the fragment goes.
/// let url = PageUrl::parse("https://a.example:8443/p%20q/?b=2&a=%E4%B8%AD#x").unwrap();
/// assert_eq!(url.as_str(), "https://a.example:8443/p%20q/?b=2&a=%E4%B8%AD");
/// assert_eq!(url.origin(), "https://a.example:8443");
/// let err = PageUrl::parse("javascript:alert(1)").unwrap_err();
/// assert!(matches!(err, Error::InvalidPageUrl(PageUrlProblem::NotHttp)));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PageUrl {
    text: String,
    origin: Origin,
}

/// A page's origin: usually the text's own prefix (a lower-case host, no default port), kept
/// as its length so that parsing allocates once; otherwise normalised into its own string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    Prefix(usize),
    Owned(String),
}

impl PageUrl {
    /// Removes the fragment and checks what is left (see the [module docs](self)).
    pub fn parse(raw: &str) -> Result<Self> {
        let (end, origin) = Self::check(raw)?;
        Ok(Self {
            text: raw[..end].to_string(),
            origin,
        })
    }

    /// [`parse`](Self::parse), keeping `raw`'s own buffer (the text a server decoded from a
    /// request, say) instead of copying it.
    ///
    /// ```
    /// use unilogin_core::jsapi::PageUrl;
    /// let url = PageUrl::parse_owned("https://a.example/p?x=1#top".to_string()).unwrap();
    /// assert_eq!(url, PageUrl::parse("https://a.example/p?x=1").unwrap());
    /// ```
    pub fn parse_owned(mut raw: String) -> Result<Self> {
        let (end, origin) = Self::check(&raw)?;
        raw.truncate(end);
        Ok(Self { text: raw, origin })
    }

    /// Where the text signed ends (at the fragment) and its origin, or why it is refused.
    fn check(raw: &str) -> Result<(usize, Origin)> {
        let bad = |p| Err(Error::InvalidPageUrl(p));
        let bytes = raw.as_bytes();
        let end = bytes.iter().position(|&b| b == b'#').unwrap_or(bytes.len());
        let text = &raw[..end];
        if text.is_empty() {
            return bad(PageUrlProblem::Empty);
        }
        if text.len() > MAX_PAGE_URL_LEN {
            return bad(PageUrlProblem::TooLong);
        }
        // Bytes a browser's `location.href` never holds: folded without an early exit, which
        // the compiler turns into a few wide comparisons (URLs are short, and nearly always
        // clean).
        let ascii_bad = text.bytes().fold(false, |bad, b| {
            bad | (b <= b' ') | (b == 0x7f) | (b == b'\\')
        });
        let unicode_bad = |c: char| c.is_whitespace() || c.is_control();
        if ascii_bad || (!text.is_ascii() && text.chars().any(unicode_bad)) {
            return bad(PageUrlProblem::Characters);
        }
        let after_scheme = if text.starts_with("https://") {
            "https://".len()
        } else if text.starts_with("http://") {
            "http://".len()
        } else {
            return bad(PageUrlProblem::NotHttp);
        };
        // Only the scheme and authority are parsed (host, port, credentials, origin): the
        // path and query are signed raw, and a URL parser accepts any path and query bytes
        // left after the character check above (it would only re-encode them).
        let authority_end = text.as_bytes()[after_scheme..]
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .map_or(text.len(), |at| after_scheme + at);
        let (scheme, authority) = (&text[..after_scheme], &text[after_scheme..authority_end]);
        let origin = match plain_origin(scheme, authority) {
            Some(origin) => origin,
            None => Origin::Owned(parsed_origin(&text[..authority_end])?),
        };
        Ok((end, origin))
    }

    /// The URL signed: exactly the input up to its first `#`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The page's origin (`scheme://host[:port]`, default port omitted, host lower-cased as
    /// URL parsers do), for checking it against the origins a tenant allows.
    pub fn origin(&self) -> &str {
        match &self.origin {
            Origin::Prefix(end) => &self.text[..*end],
            Origin::Owned(origin) => origin,
        }
    }
}

impl fmt::Debug for PageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (path, query) = match self.text.split_once('?') {
            Some((path, _)) => (path, "?…"),
            None => (self.text.as_str(), ""),
        };
        write!(
            f,
            "PageUrl({:?})",
            format_args!("{path}{query}").to_string()
        )
    }
}

impl fmt::Display for PageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The origin of `scheme` (`https://` or `http://`) + `authority` when the authority is a
/// plain ASCII host name with an optional port — the common case, without a URL parser's IDNA
/// processing. `None` for anything else (credentials, IP literals, non-ASCII or numeric hosts,
/// odd ports), which [`parsed_origin`] then decides. [`Origin::Prefix`] when the origin is
/// `scheme` + `authority` exactly as written (the usual case: no allocation).
fn plain_origin(scheme: &str, authority: &str) -> Option<Origin> {
    let a = authority.as_bytes();
    let (host, port_text) = match a.iter().rposition(|&b| b == b':') {
        Some(at) => (&authority[..at], Some(&authority[at + 1..])),
        None => (authority, None),
    };
    let h = host.as_bytes();
    if h.len() > 253 {
        return None;
    }
    // One pass over the labels (the host without one trailing dot): each 1 to 63 characters
    // of `A-Z a-z 0-9 -`, not starting or ending with `-`, no `xn--` anywhere (those labels
    // need IDNA checks: left to the URL parser).
    let labels = h.strip_suffix(b".").unwrap_or(h);
    let (mut start, mut last_start, mut upper) = (0, 0, false);
    for at in 0..=labels.len() {
        match labels.get(at) {
            None | Some(b'.') => {
                let label = &labels[start..at];
                if label.is_empty()
                    || label.len() > 63
                    || label[0] == b'-'
                    || label[label.len() - 1] == b'-'
                {
                    return None;
                }
                last_start = start;
                start = at + 1;
            }
            Some(&b) if b.is_ascii_alphanumeric() => upper |= b.is_ascii_uppercase(),
            Some(b'-') => {
                if at >= 3
                    && labels[at - 1] == b'-'
                    && labels[at - 2] | 0x20 == b'n'
                    && labels[at - 3] | 0x20 == b'x'
                {
                    return None;
                }
            }
            Some(_) => return None,
        }
    }
    // A numeric last label makes it an IPv4 address to a URL parser: leave it to it.
    let last = &labels[last_start..];
    if last.iter().all(u8::is_ascii_digit) || last.starts_with(b"0x") {
        return None;
    }
    let default_port = if scheme == "https://" { 443 } else { 80 };
    let port = match port_text {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            let n: u32 = p.parse().ok()?;
            match n {
                0..=65535 if n == default_port => None,
                0..=65535 => Some(n),
                _ => return None,
            }
        }
        Some(_) => return None,
    };
    let canonical_port = match (port, port_text) {
        (None, None) => true,
        (Some(n), Some(text)) => !text.starts_with('0') && n > 0,
        _ => false,
    };
    if canonical_port && !upper {
        return Some(Origin::Prefix(scheme.len() + authority.len()));
    }
    let mut origin = String::with_capacity(scheme.len() + authority.len());
    origin.push_str(scheme);
    origin.push_str(&host.to_ascii_lowercase());
    if let Some(port) = port {
        origin.push(':');
        origin.push_str(&port.to_string());
    }
    Some(Origin::Owned(origin))
}

/// The origin of `scheme://authority` by the URL parser, with the typed refusals.
fn parsed_origin(prefix: &str) -> Result<String> {
    let bad = |p| Err(Error::InvalidPageUrl(p));
    let Ok(parsed) = url::Url::parse(prefix) else {
        return bad(PageUrlProblem::Malformed);
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad(PageUrlProblem::Malformed);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad(PageUrlProblem::Credentials);
    }
    Ok(parsed.origin().ascii_serialization())
}

/// A signature and the values signed (never the ticket): what the platform's config object is
/// built from, and what a client reports back when the platform refused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The page URL signed.
    pub url: PageUrl,
    /// The nonce signed (`noncestr`; `nonceStr` in the config objects).
    pub nonce: String,
    /// The timestamp signed, in the platform's [`TimestampUnit`].
    pub timestamp: u64,
    /// Lower-case hex SHA-1 ([`sign`]).
    pub signature: String,
}

/// What a page passes to its platform's `config` call, and the parts it was built from.
///
/// `Debug` never shows the ticket (the object does not contain it).
#[derive(Debug, Clone, PartialEq)]
pub struct JsapiConfig {
    /// The ticket that signed it.
    pub kind: TicketKind,
    /// The values signed and the signature.
    pub signed: Signed,
    /// The exact object the platform's JS SDK expects (field names and casing as it wants
    /// them): DingTalk `dd.config`, Feishu `h5sdk.config`, WeCom `wx.config` /
    /// `wx.agentConfig`. Add callbacks (`onSuccess`, `success`, …) on the page.
    pub config: Value,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The bare signing function: lower-case hex SHA-1 of
/// `jsapi_ticket=<ticket>&noncestr=<nonce>&timestamp=<timestamp>&url=<url>`, values raw (not
/// URL-escaped). No allocation besides the 40-character result.
///
/// ```
/// use unilogin_core::jsapi::sign;
/// // WeChat JS-SDK documentation, appendix 1.
/// let ticket = "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg";
/// assert_eq!(
///     sign(ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"),
///     "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
/// );
/// ```
pub fn sign(ticket: &str, nonce: &str, timestamp: u64, url: &str) -> String {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut t = timestamp;
    loop {
        at -= 1;
        digits[at] = b'0' + (t % 10) as u8;
        t /= 10;
        if t == 0 {
            break;
        }
    }
    let mut h = Sha1::new();
    h.update(b"jsapi_ticket=");
    h.update(ticket.as_bytes());
    h.update(b"&noncestr=");
    h.update(nonce.as_bytes());
    h.update(b"&timestamp=");
    h.update(&digits[at..]);
    h.update(b"&url=");
    h.update(url.as_bytes());
    let digest = h.finalize();
    let mut out = String::with_capacity(2 * digest.len());
    for b in digest {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0F)]));
    }
    out
}

/// Signs `url` with `ticket`, `nonce` and `timestamp` (see [`sign`]).
pub fn sign_page(ticket: &AccessToken, url: PageUrl, nonce: String, timestamp: u64) -> Signed {
    Signed {
        signature: sign(ticket.expose(), &nonce, timestamp, url.as_str()),
        url,
        nonce,
        timestamp,
    }
}

/// A fresh random nonce: [`NONCE_LEN`] ASCII letters and digits, each uniformly drawn.
///
/// ```
/// let n = unilogin_core::jsapi::nonce();
/// assert_eq!(n.len(), unilogin_core::jsapi::NONCE_LEN);
/// assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
/// assert_ne!(n, unilogin_core::jsapi::nonce());
/// ```
pub fn nonce() -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Six random bits per character, the two values past the alphabet drawn again (rejection
    // sampling: no bias, and no 128-bit division). 32 bytes almost always suffice.
    let mut out = [0u8; NONCE_LEN];
    let mut filled = 0;
    while filled < NONCE_LEN {
        let bytes: [u8; 32] = rand::random();
        for b in bytes {
            let i = usize::from(b & 0x3f);
            if let Some(&c) = ALPHABET.get(i) {
                out[filled] = c;
                filled += 1;
                if filled == NONCE_LEN {
                    break;
                }
            }
        }
    }
    out.iter().copied().map(char::from).collect()
}

/// A JSON object of `fields` in this order, allocated once at its size: what a platform's
/// [`Platform::jsapi_object`](crate::Platform::jsapi_object) returns, built without growing
/// the map field by field as `json!` does.
///
/// ```
/// use serde_json::{Value, json};
/// use unilogin_core::jsapi::config_object;
/// let o = config_object([("appId", Value::from("cli_1")), ("timestamp", Value::from(7u64))]);
/// assert_eq!(o, json!({"appId": "cli_1", "timestamp": 7}));
/// assert_eq!(o.to_string(), r#"{"appId":"cli_1","timestamp":7}"#);
/// ```
pub fn config_object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut map = serde_json::Map::with_capacity(N);
    for (name, value) in fields {
        map.insert(name.to_owned(), value);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_in_decimal_without_padding() {
        let t = AccessToken::new("t");
        let url = PageUrl::parse("https://a.example/").unwrap();
        for ts in [0u64, 7, 10, 1_700_000_000, 1_700_000_000_123, u64::MAX] {
            let manual = {
                let s = format!("jsapi_ticket=t&noncestr=n&timestamp={ts}&url=https://a.example/");
                let d = Sha1::digest(s.as_bytes());
                d.iter().map(|b| format!("{b:02x}")).collect::<String>()
            };
            assert_eq!(
                sign_page(&t, url.clone(), "n".into(), ts).signature,
                manual,
                "{ts}"
            );
        }
    }

    #[test]
    fn the_plain_host_fast_path_agrees_with_the_url_parser() {
        let authorities = [
            "app.example.com",
            "APP.Example.COM",
            "a.example:8443",
            "a.example:443",
            "a.example:80",
            "a.example:0",
            "a.example:65535",
            "a.example:08443",
            "a-b.c-d.example.",
            "localhost",
            "localhost:3000",
            "h5.dingtalk.com",
        ];
        for scheme in ["https://", "http://"] {
            for authority in authorities {
                let text = format!("{scheme}{authority}");
                let fast = match plain_origin(scheme, authority).expect(authority) {
                    Origin::Prefix(end) => text[..end].to_string(),
                    Origin::Owned(origin) => origin,
                };
                let slow = parsed_origin(&text).unwrap();
                assert_eq!(fast, slow, "{text}");
                assert_eq!(PageUrl::parse(&format!("{text}/p")).unwrap().origin(), slow);
            }
        }
        // Everything else goes to the parser.
        for authority in [
            "1.2.3.4",
            "1.2.3",
            "0x7f.1",
            "a.example.1",
            "[::1]:8080",
            "user@a.example",
            "xn--fiq228c.example",
            "中文.example",
            "a_b.example",
            "-a.example",
            "a..example",
            "a.example:",
            "a.example:65536",
            "a.example:065535",
            "a.example:+80",
            "",
        ] {
            assert!(plain_origin("https://", authority).is_none(), "{authority}");
        }
        assert_eq!(
            PageUrl::parse("https://1.2.3/x").unwrap().origin(),
            "https://1.2.0.3"
        );
        assert_eq!(
            PageUrl::parse("http://[::1]:8080/x").unwrap().origin(),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn nonces_use_the_whole_alphabet_evenly() {
        let mut counts = std::collections::HashMap::new();
        for _ in 0..2_000 {
            let n = nonce();
            assert_eq!(n.len(), NONCE_LEN);
            for c in n.chars() {
                *counts.entry(c).or_insert(0u32) += 1;
            }
        }
        // 32,000 characters over 62: about 516 each; every one appears, none is favoured.
        assert_eq!(counts.len(), 62, "{counts:?}");
        assert!(counts.keys().all(char::is_ascii_alphanumeric));
        let (min, max) = (
            counts.values().min().unwrap(),
            counts.values().max().unwrap(),
        );
        assert!(*min > 380 && *max < 660, "min {min}, max {max}");
    }

    #[test]
    fn debug_hides_the_query() {
        let url = PageUrl::parse("https://a.example/cb?code=SECRETCODE&state=S1").unwrap();
        let shown = format!("{url:?} {url}");
        assert!(
            !shown.contains("SECRETCODE") && !shown.contains("S1"),
            "{shown}"
        );
        assert!(shown.contains("https://a.example/cb?…"), "{shown}");
    }
}
