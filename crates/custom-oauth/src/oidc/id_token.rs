//! When an `id_token` is required, verified or ignored (its verification is [`super::jwks`]).

use serde_json::{Map, Value};
use unilogin_core::error::IdTokenProblem;
use unilogin_core::{Error, Result, UpstreamCode};

use super::Oidc;
use super::discovery::Endpoints;
use super::jwks::Expectations;
use super::token::TokenResponse;

impl Oidc {
    /// The verified claims of the token response's `id_token`; `None` when there is none (and
    /// `required` is false) or it cannot be verified (no issuer or JWKS, and the tenant does
    /// not require one). `nonce` is the one sent at authorize time (none on refresh).
    pub(super) async fn id_token_claims(
        &self,
        ep: &Endpoints,
        token: &TokenResponse,
        nonce: Option<&str>,
        required: bool,
    ) -> Result<Option<Map<String, Value>>> {
        let ctx = self.base.ctx("token");
        let Some(id_token) = token.id_token.as_deref().filter(|t| !t.is_empty()) else {
            if required {
                return Err(Error::InvalidIdToken {
                    ctx,
                    problem: IdTokenProblem::Malformed,
                });
            }
            return Ok(None);
        };
        let (Some(issuer), Some(jwks)) = (&ep.issuer, &ep.jwks) else {
            if self.options.require_id_token {
                return Err(Error::Misconfigured {
                    ctx,
                    code: UpstreamCode::Text("no_jwks_uri".into()),
                    hint: "an id_token is required but the provider publishes no jwks_uri: set options.jwks_uri".into(),
                });
            }
            tracing::debug!("id_token not verifiable without issuer and jwks_uri; ignoring it");
            return Ok(None);
        };
        let expect = Expectations {
            issuer,
            client_id: self.base.app_key.as_str(),
            nonce,
            access_token: &token.access_token,
            algorithms: &self.options.algorithms,
            leeway: self.options.leeway,
        };
        self.jwks
            .verify(&self.base.http, &ctx, jwks, id_token, &expect)
            .await
            .map(Some)
    }
}
