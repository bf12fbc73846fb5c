//! Exact redirect-URI allow-listing (RFC 9700 §4.1.3): a return URL is accepted only when it is
//! byte-for-byte one of the tenant's registered URIs. No prefix, wildcard, sub-domain or
//! "same host" matching; no normalisation that could make two different strings equal.

use url::Url;

use crate::error::{Error, Result};
use crate::types::TenantId;

/// Checks `candidate` against the tenant's `allowed` list and returns it parsed.
///
/// Besides being listed, the URI must be an absolute `https` URL (or `http` on a loopback
/// host, for local development), without user info or a fragment, and its string form must
/// survive parsing unchanged — so that `\`, `//host`, `@`, mixed-case schemes, default ports and
/// percent-encoding tricks cannot make a listed string mean another place.
///
/// ```
/// use unilogin_core::{redirect::check_redirect, TenantId};
/// let t = TenantId::new("acme").unwrap();
/// let allowed = vec!["https://app.acme.example/done".to_string()];
/// assert!(check_redirect(&t, &allowed, "https://app.acme.example/done").is_ok());
/// assert!(check_redirect(&t, &allowed, "https://app.acme.example/done/../x").is_err());
/// assert!(check_redirect(&t, &allowed, "https://app.acme.example.evil.example/done").is_err());
/// ```
pub fn check_redirect(tenant: &TenantId, allowed: &[String], candidate: &str) -> Result<Url> {
    let refuse = || Error::RedirectNotAllowed {
        tenant: tenant.clone(),
    };
    if !allowed.iter().any(|a| a == candidate) {
        return Err(refuse());
    }
    validate_redirect_shape(candidate).map_err(|_| refuse())
}

/// Validates the shape of a redirect URI (used when a tenant's allow-list is loaded, so a bad
/// entry is rejected at configuration time). The error says what is wrong.
pub fn validate_redirect_shape(uri: &str) -> std::result::Result<Url, &'static str> {
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err("contains whitespace, control characters or a backslash");
    }
    let url = Url::parse(uri).map_err(|_| "not an absolute URL")?;
    if url.as_str() != uri {
        return Err("not in canonical form (it would be rewritten when parsed)");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info (`user@`)");
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment");
    }
    let host = url.host_str().ok_or("has no host")?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if matches!(host, "localhost" | "127.0.0.1" | "[::1]") => Ok(url),
        _ => Err("must use https (http only on a loopback host)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_listed_uris_pass() {
        let t = TenantId::new("acme").unwrap();
        let allowed = vec![
            "https://app.acme.example/cb".to_string(),
            "http://127.0.0.1:8080/cb".to_string(),
            "https://App.acme.example/upper".to_string(),
        ];
        assert!(check_redirect(&t, &allowed, "https://app.acme.example/cb").is_ok());
        assert!(check_redirect(&t, &allowed, "http://127.0.0.1:8080/cb").is_ok());
        for bad in [
            "https://app.acme.example/cb/",
            "https://app.acme.example/cb?x=1",
            "https://app.acme.example/cbx",
            "https://app.acme.example:443/cb",
            "https://evil.example/cb",
            "https://app.acme.example.evil.example/cb",
            "https://app.acme.example@evil.example/cb",
            "//app.acme.example/cb",
            "https:\\\\app.acme.example/cb",
            "HTTPS://app.acme.example/cb",
            "https://app.acme.example/%63b",
            "http://app.acme.example/cb",
            "javascript:alert(1)",
            "",
            // listed, but not canonical: the parser lower-cases the host.
            "https://App.acme.example/upper",
        ] {
            assert!(
                check_redirect(&t, &allowed, bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn shape_errors_say_why() {
        assert_eq!(
            validate_redirect_shape("http://example.com/x").unwrap_err(),
            "must use https (http only on a loopback host)"
        );
        assert!(validate_redirect_shape("https://a.example/x#frag").is_err());
        assert!(validate_redirect_shape("https://u:p@a.example/x").is_err());
        assert!(validate_redirect_shape("https://a.example/x").is_ok());
    }
}
