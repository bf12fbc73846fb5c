//! Feishu / Lark mini programs (小程序): the code of `tt.login` is exchanged with
//! `POST open-apis/mina/v2/tokenLoginValidate` (`{"code"}`, bearer `app_access_token`).
//!
//! The answer's `data` carries `open_id`, `employee_id` (the `user_id`, only with
//! `contact:user.employee_id:readonly`), `tenant_key`, the user's `access_token` /
//! `refresh_token` and `expires_in` — an **absolute** Unix time, not a duration — plus a
//! `union_id` that is deprecated and not the real Union ID (never used: the directory read of
//! the detail step supplies the real one) and the `session_key`, which is dropped as soon as
//! the response arrives (never kept, logged or put in an error).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use unilogin_core::envelope::{check_code, require_str, str_at};
use unilogin_core::platform::{Identity, UserToken};
use unilogin_core::{AccessToken, AuthCode, ErrorClass, RefreshToken, Result, UpstreamCode};

use crate::Feishu;
use crate::api::{AVAILABILITY_HINT, class_at};

const ENDPOINT: &str = "mina/v2/tokenLoginValidate";

/// `tokenLoginValidate`'s own codes, then the platform's table.
fn classify(code: &UpstreamCode, status: u16) -> ErrorClass {
    match code {
        UpstreamCode::Number(10202) => ErrorClass::TokenInvalid,
        UpstreamCode::Number(10213) => ErrorClass::InvalidCode,
        UpstreamCode::Number(10228) => ErrorClass::Misconfigured(AVAILABILITY_HINT),
        other => class_at(other, status, false),
    }
}

/// `expires_in` as a lifetime: an absolute Unix time (as documented) or, should Feishu send a
/// duration after all, that duration.
fn lifetime(value: Option<&Value>, now: u64) -> Option<Duration> {
    let n = value.and_then(unilogin_core::envelope::numeric)?;
    let n = u64::try_from(n).ok()?;
    let left = if n > 1_000_000_000 {
        n.checked_sub(now)?
    } else {
        n
    };
    (left > 0).then(|| Duration::from_secs(left))
}

impl Feishu {
    /// `tt.login` code → identity.
    pub(crate) async fn mina_identity(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        let token = self.base.app_token(app_token)?;
        let ctx = self.base.ctx(ENDPOINT);
        let request = self.post_json(ENDPOINT, &json!({ "code": code.expose() }))?;
        let request = request.bearer_auth(token.expose());
        let mut response = self.base.http.send(&ctx, request).await?;
        if let Some(data) = response.body.get_mut("data").and_then(Value::as_object_mut) {
            data.remove("session_key");
        }
        let status = response.status;
        let reset = response.header_seconds("x-ogw-ratelimit-reset");
        check_code(
            &ctx,
            &response,
            "/code",
            "/msg",
            |c| classify(c, status),
            reset,
        )?;
        let body = &response.body;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let user_token = str_at(body, "/data/access_token").map(|t| UserToken {
            access_token: AccessToken::new(t),
            refresh_token: str_at(body, "/data/refresh_token").map(RefreshToken::new),
            expires_in: lifetime(body.pointer("/data/expires_in"), now),
            refresh_expires_in: None,
            scope: None,
        });
        Ok(Identity {
            open_id: Some(require_str(&ctx, &response, "/data/open_id")?),
            org_id: Some(require_str(&ctx, &response, "/data/tenant_key")?),
            user_id: str_at(body, "/data/employee_id"),
            // `data.union_id` here is not the real Union ID: left to the directory read.
            union_id: None,
            user_token,
            ..Identity::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_is_an_absolute_time() {
        let now = 1_700_000_000;
        assert_eq!(
            lifetime(Some(&json!(1_700_007_200)), now),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(lifetime(Some(&json!(1_699_999_999)), now), None);
        assert_eq!(
            lifetime(Some(&json!(7200)), now),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(lifetime(Some(&json!("x")), now), None);
        assert_eq!(lifetime(None, now), None);
    }
}
