//! The browser side every fake shares: the sign-in page that lists every known person with an
//! *Approve* button (a list lets a test or a sandbox user pick who signs in), its error pages,
//! and the redirect back to the client's callback.
//!
//! Each platform supplies its texts, paths and hidden fields; the markup is the same, so tests
//! and the gateway's browser test find people by `li[data-user-id=…] button[type=submit]`.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use url::Url;

use crate::http::{self, FormRejection, Params, html_escape};
use crate::users::{FakeUser, UserDirectory};

/// A platform's sign-in page: its fixed texts and where its forms post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInPage {
    /// `<title>` (plain text).
    pub title: &'static str,
    /// Path the forms post to.
    pub action: &'static str,
    /// Show each person's organisation in a `<span class="{org_class}">`.
    pub org_class: Option<&'static str>,
    /// The Approve buttons send `action=approve`, and a *Deny* form (`action=deny`) follows the
    /// list (see [`decide`]).
    pub deny: bool,
}

impl SignInPage {
    /// The page (HTTP 200): `heading` (HTML: escape what it quotes) and `users`, each with an
    /// Approve form carrying the `hidden` inputs (see [`hidden`], [`hidden_params`]) and the
    /// person's `user_id`. People without an organisation belong to `home_org`.
    pub fn render(
        &self,
        heading: &str,
        hidden: &str,
        home_org: &str,
        users: &[FakeUser],
    ) -> Response {
        let Self {
            title,
            action,
            org_class,
            deny,
        } = *self;
        let named = if deny {
            " name=\"action\" value=\"approve\""
        } else {
            ""
        };
        let mut rows = String::new();
        for u in users {
            let org = org_class
                .map(|class| {
                    let org = html_escape(u.org_or(home_org));
                    format!(" <span class=\"{class}\">{org}</span>")
                })
                .unwrap_or_default();
            rows.push_str(&format!(
                "<li class=\"user\" data-user-id=\"{id}\"><span class=\"name\">{name}</span>{org}\
                 <form method=\"post\" action=\"{action}\">{hidden}{uid}\
                 <button type=\"submit\"{named}>Approve</button></form></li>\n",
                id = html_escape(&u.user_id),
                name = html_escape(&u.name),
                uid = self::hidden("user_id", &u.user_id),
            ));
        }
        let deny_form = if deny {
            format!(
                "<form method=\"post\" action=\"{action}\">{hidden}\
                 <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>\n"
            )
        } else {
            String::new()
        };
        http::html(
            StatusCode::OK,
            format!(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
                 <body><h1>{heading}</h1>\n<ul>\n{rows}</ul>\n{deny_form}</body></html>\n"
            ),
        )
    }
}

/// An HTML error page: `title`, `heading`, the escaped `message` and `extra` markup after it.
pub fn error_page(
    status: StatusCode,
    (title, heading): (&str, &str),
    message: &str,
    extra: &str,
) -> Response {
    http::html(
        status,
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
             <body><h1>{heading}</h1><p class=\"error\">{}</p>{extra}</body></html>\n",
            html_escape(message)
        ),
    )
}

/// `<input type="hidden" name=… value=…>`, both escaped.
pub fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        html_escape(name),
        html_escape(value)
    )
}

/// The hidden inputs of an OAuth2-style page: `client_id`, `redirect_uri`, `scope`, and `state`
/// when the request had one.
pub fn oauth_hidden(client_id: &str, redirect: &Url, scope: &str, state: Option<&str>) -> String {
    let mut out = [
        hidden("client_id", client_id),
        hidden("redirect_uri", redirect.as_str()),
        hidden("scope", scope),
    ]
    .concat();
    if let Some(state) = state {
        out.push_str(&hidden("state", state));
    }
    out
}

/// Hidden inputs for every parameter of `p` but those in `skip`, in name order.
pub fn hidden_params(p: &Params, skip: &[&str]) -> String {
    let mut keys: Vec<&String> = p.keys().filter(|k| !skip.contains(&k.as_str())).collect();
    keys.sort();
    keys.into_iter().map(|k| hidden(k, &p[k])).collect()
}

/// Why a posted sign-in form is refused (an HTTP 400 page, worded by [`chinese`](Self::chinese)
/// or [`english`](Self::english)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a form post.
    NotForm,
    /// The body was too large or broken off.
    TooLarge,
    /// No such person.
    UnknownUser,
    /// An `action` other than `approve` and `deny`.
    UnknownAction,
    /// The callback URL cannot be sent as a `Location`.
    BadRedirect,
}

impl Refusal {
    /// The wording of DingTalk's, Feishu's and WeCom's pages.
    pub fn chinese(self) -> &'static str {
        match self {
            Refusal::NotForm => "请求必须是表单提交",
            Refusal::TooLarge => "请求体过大",
            Refusal::UnknownUser => "未知用户",
            Refusal::UnknownAction => "未知操作",
            Refusal::BadRedirect => "redirect_uri 无法使用",
        }
    }

    /// The wording of the self-built platform's pages.
    pub fn english(self) -> &'static str {
        match self {
            Refusal::NotForm => "expected a form submission",
            Refusal::TooLarge => "body too large",
            Refusal::UnknownUser => "unknown user",
            Refusal::UnknownAction => "unknown action",
            Refusal::BadRedirect => "redirect_uri cannot be used",
        }
    }
}

impl From<FormRejection> for Refusal {
    fn from(r: FormRejection) -> Self {
        match r {
            FormRejection::NotForm => Refusal::NotForm,
            FormRejection::TooLarge => Refusal::TooLarge,
        }
    }
}

/// The posted form of a sign-in page.
pub async fn read_form(req: Request) -> Result<Params, Refusal> {
    Ok(http::read_form(req).await?)
}

/// The `user_id` a form signs in as, if `users` knows them.
pub fn known_user<'a>(form: &'a Params, users: &UserDirectory) -> Result<&'a str, Refusal> {
    let user_id = form.get("user_id").map_or("", String::as_str);
    match users.get(user_id) {
        Some(_) => Ok(user_id),
        None => Err(Refusal::UnknownUser),
    }
}

/// What an Approve / Deny form (`action`, default `approve`) sends back to the client:
/// `(code_key, issue(user_id))` for a known person, `("error", "access_denied")` for *Deny*.
pub fn decide<'k>(
    form: &Params,
    users: &UserDirectory,
    code_key: &'k str,
    issue: impl FnOnce(&str) -> String,
) -> Result<(&'k str, String), Refusal> {
    match form.get("action").map_or("approve", String::as_str) {
        "approve" => Ok((code_key, issue(known_user(form, users)?))),
        "deny" => Ok(("error", "access_denied".to_owned())),
        _ => Err(Refusal::UnknownAction),
    }
}

/// The redirect back to the client: `target` with `key=value` and then the echoed `state`
/// appended to its query. `None` if the URL cannot be a `Location` header.
pub fn back_to(
    status: StatusCode,
    mut target: Url,
    (key, value): (&str, &str),
    state: Option<&str>,
) -> Option<Response> {
    target.query_pairs_mut().append_pair(key, value);
    if let Some(state) = state {
        target.query_pairs_mut().append_pair("state", state);
    }
    http::redirect(status, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(resp: Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
        String::from_utf8(bytes.expect("body").to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn the_sign_in_page_lists_people_with_their_forms() {
        let users = [
            FakeUser::new("u<1>").name("A & B"),
            FakeUser::new("u2").in_org("other"),
        ];
        let page = SignInPage {
            title: "T",
            action: "/approve",
            org_class: Some("org"),
            deny: true,
        };
        let html = text(page.render("<h>", &hidden("k", "v\""), "home", &users)).await;
        assert!(
            html.contains("<title>T</title>") && html.contains("<h1><h></h1>"),
            "{html}"
        );
        assert!(html.contains(
            "<li class=\"user\" data-user-id=\"u&lt;1&gt;\"><span class=\"name\">A &amp; B</span> \
             <span class=\"org\">home</span><form method=\"post\" action=\"/approve\">\
             <input type=\"hidden\" name=\"k\" value=\"v&quot;\">\
             <input type=\"hidden\" name=\"user_id\" value=\"u&lt;1&gt;\">\
             <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button></form></li>"
        ), "{html}");
        assert!(html.contains("<span class=\"org\">other</span>"));
        assert!(html.contains("value=\"deny\">Deny</button>"));
        let plain = SignInPage {
            org_class: None,
            deny: false,
            ..page
        };
        let html = text(plain.render("H", "", "home", &users)).await;
        assert!(!html.contains("org") && !html.contains("Deny"), "{html}");
        assert!(html.contains("<button type=\"submit\">Approve</button>"));
    }

    #[test]
    fn forms_decide_approve_deny_or_refuse() {
        let users: UserDirectory = [FakeUser::new("u1")].into_iter().collect();
        let form = |pairs: &[(&str, &str)]| -> Params {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let issue = |user: &str| format!("code-{user}");
        let d = |f: &Params| decide(f, &users, "code", issue);
        assert_eq!(
            d(&form(&[("user_id", "u1")])),
            Ok(("code", "code-u1".to_owned()))
        );
        assert_eq!(
            d(&form(&[("action", "deny")])),
            Ok(("error", "access_denied".to_owned()))
        );
        assert_eq!(d(&form(&[("user_id", "u2")])), Err(Refusal::UnknownUser));
        assert_eq!(d(&form(&[("action", "x")])), Err(Refusal::UnknownAction));
        assert_eq!(
            hidden_params(
                &form(&[("b", "2"), ("a", "1"), ("user_id", "u")]),
                &["user_id"]
            ),
            hidden("a", "1") + &hidden("b", "2")
        );
    }
}
