"""A real relying party for unilogin-gateway's OIDC interop tests: Python's Authlib.

Authlib's framework clients (Flask, Django, Starlette) are thin: the OIDC work lives in
``OAuth2Mixin`` + ``OpenIDMixin`` over a requests ``OAuth2Session``. This script assembles the
same remote app with a dictionary for the web session and does what ``authorize_redirect``,
``authorize_access_token``, ``logout_redirect`` and ``validate_logout_response`` do in the Flask
integration. The Rust test (tests/oidc_rp_support) plays the browser and the person, over JSON
lines (this script on stdout, the test on stdin), exactly as for rp-openid-client.mjs:

  RP -> {"authorize": URL}        RP <- {"callback": URL} | {"stopped": {"status": N, "url": URL}}
  RP -> {"logout": URL}           (answered the same way)
  RP -> {"result": {...}} | {"error": {"code": "...", "description": "...", "step": "..."}}

Where Authlib's client leaves a check to the application, this script does it and says so in a
comment: the discovered issuer (OIDC Discovery 1.0 section 4.3), ``iss`` on the authorization
response (RFC 9207), the userinfo ``sub`` (OIDC Core 5.3.4) and ``aud`` (passed as a claims
option, which ``parse_id_token`` does not set by itself).

The output never carries tokens, codes or state values.

Usage: python rp_authlib.py --issuer URL --client-id ID --redirect-uri URL
         --post-logout-redirect-uri URL [--scope "openid profile email"]
         [--auth-method client_secret_basic|client_secret_post|none] [--mode MODE]
  The client secret comes from the environment (RP_CLIENT_SECRET), never from argv.
  MODE: happy (default) | wrong_redirect_uri | reused_code | wrong_secret | missing_pkce
"""

import argparse
import json
import os
import sys
from urllib.parse import parse_qsl, urlsplit

import requests
from authlib.integrations.base_client import (
    BaseApp,
    FrameworkIntegration,
    OAuth2Mixin,
    OAuthError,
    OpenIDMixin,
)
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import JoseError

MODES = ["happy", "wrong_redirect_uri", "reused_code", "wrong_secret", "missing_pkce"]


class Failure(Exception):
    """A step failed with an error code (the RFC's, when the library surfaced one)."""

    def __init__(self, step, code, description):
        super().__init__(description)
        self.step = step
        self.code = code
        self.description = description


class Framework(FrameworkIntegration):
    """Authlib's framework hooks with no framework: tokens are kept by the caller."""

    def update_token(self, token, refresh_token=None, access_token=None):
        pass


class RemoteApp(OAuth2Mixin, OpenIDMixin, BaseApp):
    """The same composition as Authlib's ``FlaskOAuth2App``, minus Flask."""

    client_cls = OAuth2Session


def say(message):
    sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def ask(message):
    say(message)
    line = sys.stdin.readline()
    if not line:
        raise Failure("internal", "test_gone", "the test closed stdin")
    return json.loads(line)


def landed(answer, expected_prefix, step):
    """The URL the browser was redirected to, or a Failure when it stayed on a page."""
    if "callback" in answer:
        url = answer["callback"]
        if not url.startswith(expected_prefix):
            parts = urlsplit(url)
            raise Failure(step, "unexpected_redirect", f"redirected to {parts.scheme}://{parts.netloc}{parts.path}")
        return url
    status = answer.get("stopped", {}).get("status")
    raise Failure(step, "no_redirect", f"the browser stopped on a page (HTTP {status})")


def from_library(step, err):
    """The error code an Authlib / joserfc / requests error carries."""
    if isinstance(err, OAuthError):
        return Failure(step, err.error, err.description or str(err))
    if isinstance(err, JoseError):
        return Failure(step, f"id_token_{err.error}", err.description or str(err))
    if isinstance(err, requests.HTTPError) and err.response is not None:
        challenge = err.response.headers.get("www-authenticate", "")
        code = f"http_{err.response.status_code}"
        for part in challenge.replace(",", " ").split():
            if part.startswith("error="):
                code = part[len("error=") :].strip('"')
        return Failure(step, code, f"HTTP {err.response.status_code}")
    return Failure(step, type(err).__name__, str(err))


def run(args):
    secret = os.environ.get("RP_CLIENT_SECRET") or None
    if args.mode == "wrong_secret":
        secret = f"{secret or ''}-wrong"
    public = args.auth_method == "none"
    client_kwargs = {"scope": args.scope, "token_endpoint_auth_method": args.auth_method}
    if args.mode != "missing_pkce":
        client_kwargs["code_challenge_method"] = "S256"
    framework = Framework("rp")
    web_session = {}
    app = RemoteApp(
        framework,
        name="rp",
        client_id=args.client_id,
        client_secret=None if public else secret,
        server_metadata_url=args.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs=client_kwargs,
    )
    checks = []

    try:
        metadata = app.load_server_metadata()
    except (requests.RequestException, ValueError) as err:
        raise from_library("discovery", err) from err
    # OIDC Discovery 1.0 section 4.3 (not checked by Authlib's client).
    if metadata.get("issuer") != args.issuer:
        raise Failure("discovery", "issuer_mismatch", "the discovery document names another issuer")
    checks.append("discovery")

    redirect_uri = args.redirect_uri + ("/unregistered" if args.mode == "wrong_redirect_uri" else "")
    # As FlaskOAuth2App.authorize_redirect: state, nonce and the PKCE verifier kept in the session.
    rv = app.create_authorization_url(redirect_uri)
    framework.set_state_data(
        web_session, rv["state"], {"redirect_uri": redirect_uri, **{k: v for k, v in rv.items() if k != "url"}}
    )

    callback = landed(ask({"authorize": rv["url"]}), args.redirect_uri, "authorize")
    params = dict(parse_qsl(urlsplit(callback).query))
    # RFC 9207 section 2.4 (Authlib's client leaves it to the application), before anything else.
    iss_parameter = "iss" in params
    if metadata.get("authorization_response_iss_parameter_supported"):
        if params.get("iss") != metadata["issuer"]:
            raise Failure("authorize", "invalid_iss", "the authorization response lacks the issuer's iss")
        checks.append("iss")
    # As FlaskOAuth2App.authorize_access_token.
    if "error" in params:
        raise Failure("authorize", params["error"], params.get("error_description", ""))
    state_data = framework.get_state_data(web_session, params.get("state"))
    framework.clear_state_data(web_session, params.get("state"))
    try:
        exchange = app._format_state_params(state_data, {"code": params.get("code"), "state": params.get("state")})
    except OAuthError as err:
        raise from_library("authorize", err) from err
    checks.append("state")
    nonce = state_data["nonce"]
    claims_options = {
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": args.client_id},
    }

    def exchange_code(step):
        try:
            token = app.fetch_access_token(**exchange)
        except (OAuthError, requests.RequestException) as err:
            raise from_library(step, err) from err
        try:
            claims = app.parse_id_token(token, nonce=nonce, claims_options=json.loads(json.dumps(claims_options)))
        except JoseError as err:
            raise from_library(step, err) from err
        if claims is None:
            raise Failure(step, "missing_id_token", "the token response has no id_token")
        return token, claims

    token, claims = exchange_code("token")
    checks += ["code_exchange", "id_token"]
    if args.mode != "missing_pkce":
        checks.append("pkce")

    def userinfo(access_token, step):
        try:
            info = app.userinfo(token={"access_token": access_token, "token_type": "Bearer"})
        except requests.RequestException as err:
            raise from_library(step, err) from err
        # OIDC Core 5.3.4 (not checked by Authlib's client).
        if info.get("sub") != claims["sub"]:
            raise Failure(step, "sub_mismatch", "userinfo names another subject")
        return dict(info)

    if args.mode == "reused_code":
        try:
            exchange_code("token_reuse")
        except Failure as reuse:
            revoked = False
            try:
                userinfo(token["access_token"], "userinfo")
            except Failure as err:
                revoked = err.code == "invalid_token"
            return {
                "error": {
                    "code": reuse.code,
                    "description": reuse.description,
                    "step": reuse.step,
                    "first_access_token_revoked": revoked,
                }
            }
        raise Failure("token_reuse", "reuse_accepted", "the second exchange of the code succeeded")

    info = userinfo(token["access_token"], "userinfo")
    checks.append("userinfo")

    refresh = {}
    if token.get("refresh_token"):
        old = token["refresh_token"]

        def refresh_with(refresh_token, step):
            with app._get_oauth_client(**metadata) as session:
                try:
                    return dict(session.refresh_token(metadata["token_endpoint"], refresh_token=refresh_token))
                except (OAuthError, requests.RequestException) as err:
                    raise from_library(step, err) from err

        new = refresh_with(old, "refresh")
        refresh["rotated"] = bool(new.get("refresh_token")) and new["refresh_token"] != old
        refresh["id_token"] = "id_token" in new
        if "id_token" in new:
            # OIDC Core 12.2: same iss and sub, signature checked; the nonce, if any, is the original.
            try:
                again = app.parse_id_token(new, nonce=None, claims_options=json.loads(json.dumps(claims_options)))
            except JoseError as err:
                raise from_library("refresh", err) from err
            if again["sub"] != claims["sub"]:
                raise Failure("refresh", "sub_changed", "the refreshed id_token names another subject")
        userinfo(new["access_token"], "refresh_userinfo")
        checks.append("refresh")
        if refresh["rotated"]:
            checks.append("rotation")
            try:
                refresh_with(old, "refresh_reuse")
                refresh["old_refused_with"] = None
            except Failure as err:
                refresh["old_refused_with"] = err.code
            if refresh["old_refused_with"] == "invalid_grant":
                checks.append("old_refresh_refused")
            try:
                refresh_with(new["refresh_token"], "refresh_family")
                refresh["family_revoked"] = False
            except Failure as err:
                refresh["family_revoked"] = err.code == "invalid_grant"

    # As FlaskOAuth2App.logout_redirect / validate_logout_response.
    logout = app.create_logout_url(
        post_logout_redirect_uri=args.post_logout_redirect_uri, id_token_hint=token["id_token"]
    )
    framework.set_state_data(
        web_session, logout["state"], {"post_logout_redirect_uri": args.post_logout_redirect_uri}
    )
    back = landed(ask({"logout": logout["url"]}), args.post_logout_redirect_uri, "logout")
    back_state = dict(parse_qsl(urlsplit(back).query)).get("state")
    if not back_state or not framework.get_state_data(web_session, back_state):
        raise Failure("logout", "state_mismatch", "the logout redirect carries another state")
    framework.clear_state_data(web_session, back_state)
    checks.append("logout_state")

    reported = {k: v for k, v in claims.items() if k != "nonce"}
    return {
        "result": {
            "rp": "authlib",
            "mode": args.mode,
            "claims": reported,
            "userinfo": info,
            "iss_parameter": iss_parameter,
            "refresh": refresh,
            "checks": checks,
        }
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--post-logout-redirect-uri", required=True)
    parser.add_argument("--scope", default="openid profile email")
    parser.add_argument(
        "--auth-method", default="client_secret_basic", choices=["client_secret_basic", "client_secret_post", "none"]
    )
    parser.add_argument("--mode", default="happy", choices=MODES)
    args = parser.parse_args()
    try:
        say(run(args))
    except Failure as err:
        say({"error": {"code": err.code, "description": err.description, "step": err.step}})
    except Exception as err:  # anything else is reported, not a traceback the test cannot read
        say({"error": {"code": type(err).__name__, "description": str(err), "step": "internal"}})


if __name__ == "__main__":
    main()
