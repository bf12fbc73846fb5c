//! What a browser does on a test-kit fake's sign-in page, shared by the redirect-login examples.
//!
//! Every fake serves the same markup: one `<li data-user-id=…>` per person with an *Approve*
//! form (hidden fields + the person's id). [`approve`] opens the authorize URL, submits that form
//! for one person and returns the URL the platform redirects back to, i.e. your callback with
//! `code` and `state` in its query. A real user does this in a real browser; nothing here is
//! part of an integration.

use std::error::Error;

use url::Url;

/// Opens `authorize` on the fake, presses *Approve* next to `user_id` and returns the callback
/// URL the fake redirects to.
pub async fn approve(authorize: &Url, user_id: &str) -> Result<Url, Box<dyn Error>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut page = authorize.clone();
    // A fragment (WeCom's `#wechat_redirect`) is for the client, never sent to a server.
    page.set_fragment(None);
    let response = http.get(page.clone()).send().await?;
    let status = response.status();
    let html = response.text().await?;
    if !status.is_success() {
        return Err(format!("the sign-in page answered HTTP {status}: {html}").into());
    }
    let marker = format!("data-user-id=\"{user_id}\"");
    let start = html
        .find(&marker)
        .ok_or_else(|| format!("{user_id} is not listed on the sign-in page"))?;
    let form = &html[start..];
    let form = &form[..form.find("</form>").ok_or("the sign-in page has no form")?];
    let action = attr(form, "action").ok_or("the Approve form has no action")?;
    let mut fields = Vec::new();
    for input in form.split("<input ").skip(1) {
        if let (Some(name), Some(value)) = (attr(input, "name"), attr(input, "value")) {
            fields.push((name, value));
        }
    }
    if form.contains("name=\"action\" value=\"approve\"") {
        fields.push(("action".into(), "approve".into()));
    }
    let response = http.post(page.join(&action)?).form(&fields).send().await?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .ok_or_else(|| format!("Approve did not redirect (HTTP {})", response.status()))?
        .to_str()?;
    Ok(page.join(location)?)
}

/// The unescaped value of the first `name="…"` attribute in `tag`.
fn attr(tag: &str, name: &str) -> Option<String> {
    let value = tag
        .split(&format!(" {name}=\""))
        .nth(1)?
        .split('"')
        .next()?;
    Some(
        value
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}
