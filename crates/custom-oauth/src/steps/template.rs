//! URL and parameter templates with named placeholders.
//!
//! `{app_key}`, `{app_secret}`, `{code}`, `{access_token}`, `{user_id}`, `{redirect_uri}` and
//! `{state}` are replaced at call time; `{{` and `}}` stand for literal braces. Which
//! placeholders a template may use depends on where it is (a secret is never allowed in an
//! authorize URL, a code only in the code step), and is checked when the configuration loads.

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
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
                    parts.push(Part::Var(var));
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

    /// The literal text of the template (without placeholders).
    pub(crate) fn literal_text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Var(_) => None,
            })
            .collect()
    }

    /// Fills the placeholders; `encode` percent-encodes each value (for URLs). Returns the
    /// name of a placeholder without a value as the error.
    pub(crate) fn render(&self, vars: &Vars<'_>, encode: bool) -> Result<String, &'static str> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => {
                    let value = vars.get(*v).ok_or(v.name())?;
                    if encode {
                        percent_encode(value, &mut out);
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        Ok(out)
    }
}

fn list(allowed: &[Var]) -> String {
    allowed
        .iter()
        .map(|v| format!("{{{}}}", v.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so a value can never add a
/// path segment, a query parameter or a fragment.
fn percent_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
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
        let t = Template::parse(
            "https://x.example/u/{user_id}?c={code}&k={app_key}{{x}}",
            ALL,
        )
        .unwrap();
        let vars = Vars {
            app_key: Some("k1"),
            code: Some("a&b=c/d e"),
            user_id: Some("../admin"),
            ..Vars::default()
        };
        assert_eq!(
            t.render(&vars, true).unwrap(),
            "https://x.example/u/..%2Fadmin?c=a%26b%3Dc%2Fd%20e&k=k1{x}"
        );
        assert_eq!(
            t.render(&vars, false).unwrap(),
            "https://x.example/u/../admin?c=a&b=c/d e&k=k1{x}"
        );
        assert_eq!(t.literal_text(), "https://x.example/u/?c=&k={x}");
        assert_eq!(t.render(&Vars::default(), true), Err("user_id"));
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
