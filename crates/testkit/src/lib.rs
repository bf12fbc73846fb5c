//! Faithful local fakes of the workplace platforms unilogin logs people in with, served by axum
//! on ephemeral loopback ports — for tests, examples, benchmarks and the gateway's sandbox mode,
//! in this workspace and in downstream projects.
//!
//! The fakes answer with the shapes of `reference/platforms.md` and its fixtures (field names,
//! nesting, types, error codes and HTTP statuses), validate what the real platforms validate
//! (credentials, tokens, single-use 5-minute codes, required parameters and headers, JSON vs form
//! bodies, HTTP methods), count calls per endpoint and inject faults on demand.
//!
//! ```
//! use std::time::Duration;
//! use unilogin_testkit::{Fault, FakePlatform as _, FakeUser};
//! use unilogin_testkit::dingtalk::{self, endpoints};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dt = dingtalk::start().await;
//! dt.add_user(FakeUser::new("user042").name("Wang Wu").mobile("13900000042"));
//! let code = dt.issue_h5_code("user042");
//!
//! // Point your client's DingTalk hosts at the fake and log in with `code`:
//! let oapi = dt.base_url();
//! let creds = dt.credentials();
//! # let _ = (oapi, &creds, &code);
//!
//! // Every fake shares one harness interface (`FakePlatform`): call counts, faults, clock.
//! // Make the next user-detail call fail the way DingTalk does, then check the cost of a login.
//! dt.inject(endpoints::USER_GET, Fault::TokenInvalid)?;
//! dt.advance_clock(Duration::from_secs(301)); // `code` has now expired
//! assert_eq!(dt.calls(endpoints::GETTOKEN), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # Runtime
//! A fake is served by a task on the caller's Tokio runtime (`rt` and `net` features). Under a
//! current-thread runtime (plain `#[tokio::test]`) talk to it with an async client; a blocking
//! client would block the only thread the fake runs on. Dropping the fake stops its server;
//! requests held by [`Fault::Hang`] are released then.
//!
//! # Layout
//! * Shared infrastructure, reusable by every platform fake:
//!   [`fake`] (the skeleton: [`Fake`] serves a platform [`Backend`] and implements
//!   [`FakePlatform`] for all of them), [`server`] (endpoint specs, the per-request guard,
//!   [`FakeServer`], shared fault wording), [`faults`] ([`Fault`], [`Times`]), [`calls`],
//!   [`clock`] ([`FakeClock`]), [`store`] (tokens and single-use codes), [`users`]
//!   ([`FakeUser`]), [`http`] (request parsing and response helpers), [`pages`] (the sign-in page,
//!   its error pages and the redirect back), [`platform`] (the object-safe [`FakePlatform`]
//!   trait used by the conformance suite) and [`fixtures`] (the platforms' reference documents,
//!   also read by other crates' tests), [`jsapi`] (jsapi tickets, the JS-SDK signature and its
//!   checks, the fake JS SDKs served at `/__fake/jsapi/{dingtalk,feishu,wecom}.js`) and
//!   [`events`] (event subscriptions: the platforms' callback crypto, written independently of
//!   the library, and pushing encrypted, signed events to a URL with faults).
//! * Platform fakes: [`dingtalk`], [`feishu`] (also Lark), [`wecom`], and [`selfbuilt`] (an
//!   in-house "open platform" with shapes unlike the other three, which unilogin reaches through
//!   `custom-oauth` in `mode: steps`). Each holds only its platform's knowledge: its backend
//!   (apps, users, tokens, codes), handlers, envelope and pages; its handle is an alias such as
//!   `FakeDingTalk = Fake<DingTalk>`.
//!
//! # Adding a platform fake
//! 1. Describe the platform's envelope with a [`server::PlatformResponder`]: how
//!    [`Fault::Code`]/[`Fault::TokenInvalid`]/… look, and how wrong methods and unknown paths are
//!    answered ([`server::NumericEnvelope`] and [`server::FaultCodes`] cover the common cases).
//! 2. Keep state in a backend type built on one [`FakeClock`]: [`store::TokenStore`] /
//!    [`store::CodeStore`] / [`users::UserDirectory`]; write handlers
//!    `async fn(Arc<Backend>, Request) -> http::Reply` that validate like the real platform
//!    (credentials/token first, code last), and pages with [`pages`].
//! 3. Implement [`Backend`] (identity, default state, the route table on a [`server::FakeRouter`],
//!    the identity answers) and start it with [`Fake::try_start_with`]; everything else of
//!    [`FakePlatform`] comes with [`Fake`].

// Handlers and page helpers return early with the platform's rejection `Response` (see
// `http::Reply`); boxing it on this cold path would only add noise.
#![allow(clippy::result_large_err)]

pub mod calls;
pub mod clock;
pub mod dingtalk;
pub mod events;
pub mod fake;
pub mod faults;
pub mod feishu;
pub mod fixtures;
pub mod http;
pub mod jsapi;
pub mod pages;
pub mod platform;
pub mod redis_server;
pub mod scripted;
pub mod selfbuilt;
pub mod server;
pub mod store;
mod table;
pub mod users;
pub mod wecom;

pub use calls::{CallCounter, UNMATCHED};
pub use clock::FakeClock;
pub use fake::{Backend, Fake};
pub use faults::{ANY_ENDPOINT, FIVE_MIB, Fault, FaultError, Times};
pub use platform::{AppCredentials, EndpointRole, FakePlatform};
pub use server::{FakeServer, Harness};
pub use users::FakeUser;
