//! URL and parameter templates with named placeholders.
//!
//! `{app_key}`, `{app_secret}`, `{code}`, `{access_token}`, `{user_id}`, `{redirect_uri}` and
//! `{state}` are replaced at call time; `{{` and `}}` stand for literal braces. Which
//! placeholders a template may use depends on where it is (a secret is never allowed in an
//! authorize URL, a code only in the code step), and is checked when the configuration loads.
//!
//! In a URL template a value can never change where the request goes:
//! - placeholders may only follow the host (in the path or the query), so no value is part of
//!   the scheme, user info, host or port;
//! - a value in the **path** is percent-encoded down to RFC 3986 unreserved characters minus
//!   `.` (so `/`, `\`, `?`, `#`, `%`, `;` and `.` are all encoded), and is refused when it is
//!   empty or has a `.` or `..` component (split at `/` and `\`): URL parsers treat `%2E` as a
//!   dot, so an encoded `..` would still move the request, and servers that decode `%2F` before
//!   resolving would see `../`;
//! - a value in the **query** is encoded as a query component (everything but the unreserved
//!   characters).

/// A placeholder of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    AppKey,
    AppSecret,
    Code,
    AccessToken,
    UserId,
    RedirectUri,
    State,
}

impl Var {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "app_key" => Var::AppKey,
            "app_secret" => Var::AppSecret,
            "code" => Var::Code,
            "access_token" => Var::AccessToken,
            "user_id" => Var::UserId,
            "redirect_uri" => Var::RedirectUri,
            "state" => Var::State,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Var::AppKey => "app_key",
            Var::AppSecret => "app_secret",
            Var::Code => "code",
            Var::AccessToken => "access_token",
            Var::UserId => "user_id",
            Var::RedirectUri => "redirect_uri",
            Var::State => "state",
        }
    }
}

/// How a placeholder's value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// As it is (parameters, headers: encoded by the request builder).
    Text,
    /// A URL path: one opaque segment part.
    Path,
    /// A URL query (or fragment) component.
    Query,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var, Slot),
}

/// Why a template could not be rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenderError {
    /// A placeholder without a value (a bug: the steps always fill what they allow).
    Missing(&'static str),
    /// A value that would change the URL's path if sent (empty, or a `.` / `..` component):
    /// the request is not made.
    UnsafeInPath(&'static str),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// The values of one call's placeholders.
#[derive(Default, Clone, Copy)]
pub(crate) struct Vars<'a> {
    pub app_key: Option<&'a str>,
    pub app_secret: Option<&'a str>,
    pub code: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
}

impl Vars<'_> {
    fn get(&self, var: Var) -> Option<&str> {
        match var {
            Var::AppKey => self.app_key,
            Var::AppSecret => self.app_secret,
            Var::Code => self.code,
            Var::AccessToken => self.access_token,
            Var::UserId => self.user_id,
            Var::RedirectUri => self.redirect_uri,
            Var::State => self.state,
        }
    }
}

impl Template {
    /// Parses `text`, allowing only the placeholders in `allowed`. The error says what is wrong.
    pub(crate) fn parse(text: &str, allowed: &[Var]) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!("unclosed `{{` at byte {i}"));
                    };
                    let name = &rest[..end];
                    let var = Var::parse(name).ok_or_else(|| {
                        format!(
                            "unknown placeholder `{{{name}}}` (allowed here: {})",
                            list(allowed)
                        )
                    })?;
                    if !allowed.contains(&var) {
                        return Err(format!(
                            "placeholder `{{{name}}}` is not available here (allowed here: {})",
                            list(allowed)
                        ));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(var, Slot::Text));
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                }
                '}' => return Err(format!("unmatched `}}` at byte {i} (write `}}}}`)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts })
    }

    /// Parses a URL template: [`parse`](Self::parse), and every placeholder must come after
    /// the host (`scheme://host[:port]` then `/`, `?` or `#`); its values are then encoded for
    /// the path or the query, wherever it stands.
    pub(crate) fn parse_url(text: &str, allowed: &[Var]) -> Result<Self, String> {
        let mut template = Self::parse(text, allowed)?;
        let mut literal = String::new();
        for part in &mut template.parts {
            match part {
                Part::Text(t) => literal.push_str(t),
                Part::Var(var, slot) => {
                    let after_host = literal
                        .find("://")
                        .map(|i| &literal[i + 3..])
                        .and_then(|rest| rest.find(['/', '?', '#']).map(|j| &rest[j..]));
                    let Some(rest) = after_host else {
                        return Err(format!(
                            "placeholder `{{{}}}` is in the scheme or host: placeholders may only follow the host (in the path or the query)",
                            var.name()
                        ));
                    };
                    *slot = if rest.contains(['?', '#']) {
                        Slot::Query
                    } else {
                        Slot::Path
                    };
                }
            }
        }
        Ok(template)
    }

    /// The literal text of the template (without placeholders).
    pub(crate) fn literal_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Var(..) => None,
            })
            .collect()
    }

    /// Fills the placeholders: as they are in a plain template, encoded for their place in a
    /// URL template (see the module docs), refusing a value that would change a URL's path.
    pub(crate) fn render(&self, vars: &Vars<'_>) -> Result<String, RenderError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v, slot) => {
                    let value = vars.get(*v).ok_or(RenderError::Missing(v.name()))?;
                    match slot {
                        Slot::Text => out.push_str(value),
                        Slot::Query => percent_encode(value, true, &mut out),
                        Slot::Path => {
                            if !safe_in_path(value) {
                                return Err(RenderError::UnsafeInPath(v.name()));
                            }
                            percent_encode(value, false, &mut out);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Whether a value may be written into a URL path: not empty (`/users/{user_id}` must not
/// become `/users/`), and no `.` or `..` component once split at `/` and `\`.
fn safe_in_path(value: &str) -> bool {
    !value.is_empty() && !value.split(['/', '\\']).any(|c| c == "." || c == "..")
}

fn list(allowed: &[Var]) -> String {
    allowed
        .iter()
        .map(|v| format!("{{{}}}", v.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters (`.` too unless `dot`), so a
/// value can never add a path segment, a query parameter or a fragment.
fn percent_encode(value: &str, dot: bool, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'~') || (dot && b == b'.') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Var] = &[Var::AppKey, Var::Code, Var::UserId];

    #[test]
    fn renders_and_encodes() {
        let text = "https://x.example/u/{user_id}?c={code}&k={app_key}{{x}}";
        let t = Template::parse_url(text, ALL).unwrap();
        let vars = Vars {
            app_key: Some("k.1"),
            code: Some("a&b=c/d e"),
            user_id: Some("john.doe/x"),
            ..Vars::default()
        };
        assert_eq!(
            t.render(&vars).unwrap(),
            "https://x.example/u/john%2Edoe%2Fx?c=a%26b%3Dc%2Fd%20e&k=k.1{x}"
        );
        let plain = Template::parse(text, ALL).unwrap();
        assert_eq!(
            plain.render(&vars).unwrap(),
            "https://x.example/u/john.doe/x?c=a&b=c/d e&k=k.1{x}"
        );
        assert_eq!(t.literal_text(), "https://x.example/u/?c=&k={x}");
        assert_eq!(
            t.render(&Vars::default()),
            Err(RenderError::Missing("user_id"))
        );
    }

    #[test]
    fn path_values_cannot_move_the_request() {
        let t = Template::parse_url("https://x.example/api/{code}/info?u={user_id}", ALL).unwrap();
        let render = |code: &str| {
            t.render(&Vars {
                code: Some(code),
                user_id: Some(".."),
                ..Vars::default()
            })
        };
        for code in ["..", ".", "../x", "a/../b", "..\\x", "x/.", ""] {
            assert_eq!(
                render(code),
                Err(RenderError::UnsafeInPath("code")),
                "{code:?}"
            );
        }
        for (code, sent) in [
            ("%2e%2e", "%252e%252e"),
            ("a/b?c#d", "a%2Fb%3Fc%23d"),
            ("...", "%2E%2E%2E"),
            ("..x", "%2E%2Ex"),
        ] {
            let rendered = render(code).unwrap();
            assert_eq!(
                rendered,
                format!("https://x.example/api/{sent}/info?u=.."),
                "{code:?}"
            );
            let url = url::Url::parse(&rendered).unwrap();
            assert_eq!(url.host_str(), Some("x.example"));
            assert_eq!(url.path(), format!("/api/{sent}/info"), "{code:?}");
        }
    }

    #[test]
    fn url_placeholders_must_follow_the_host() {
        for text in [
            "https://{app_key}.example/x",
            "https://x.example{code}/y",
            "https://x.example:{code}/y",
            "https://{code}@x.example/",
            "{code}",
            "https://x.example\\{code}",
        ] {
            let e = Template::parse_url(text, ALL).unwrap_err();
            assert!(e.contains("only follow the host"), "{text}: {e}");
        }
        assert!(Template::parse_url("https://x.example?c={code}", ALL).is_ok());
        assert!(Template::parse_url("https://x.example/{code}", ALL).is_ok());
    }

    #[test]
    fn rejects_bad_templates() {
        for (text, want) in [
            ("{nope}", "unknown placeholder `{nope}`"),
            ("{app_secret}", "not available here"),
            ("a{code", "unclosed"),
            ("a}b", "unmatched"),
        ] {
            let e = Template::parse(text, ALL).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
