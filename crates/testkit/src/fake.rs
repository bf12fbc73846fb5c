//! The skeleton every platform fake shares: [`Fake`] serves a platform's [`Backend`] (its
//! state, endpoints and answers) on a loopback [`FakeServer`] and implements [`FakePlatform`]
//! once for all of them.
//!
//! A platform module holds only its platform's knowledge: the backend type (apps, users, tokens,
//! codes), its handlers and envelope, and inherent methods on `Fake<ItsBackend>` for what only
//! that platform has (`FakeDingTalk::authorize_url`, `FakeWeCom::use_app`, …). Its public
//! handle is an alias, e.g. `pub type FakeDingTalk = Fake<DingTalk>`.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crate::clock::FakeClock;
use crate::platform::{AppCredentials, EndpointRole, FakePlatform};
use crate::server::{FakeRouter, FakeServer, Harness, PlatformResponder};
use crate::users::{FakeUser, UserDirectory};

/// The platform side of a [`Fake`]: what differs between platforms. The methods named after
/// [`FakePlatform`]'s answer its questions of the same names.
pub trait Backend: Send + Sync + Sized + 'static {
    /// Who the fake is.
    const IDENTITY: Identity;

    /// How the platform renders faults, wrong methods and unknown paths.
    type Responder: PlatformResponder + Default;

    /// A fresh backend with the default apps and users, on `clock`.
    fn new(clock: &FakeClock) -> Self;

    /// Register every endpoint on `router`, the handlers sharing `state`.
    fn routes(state: &Arc<Self>, router: FakeRouter) -> FakeRouter;

    /// The people the fake knows.
    fn users(&self) -> &UserDirectory;

    /// [`FakePlatform::credentials`].
    fn credentials(&self) -> AppCredentials;

    /// [`FakePlatform::issue_h5_code`].
    fn issue_h5_code(&self, user_id: &str) -> String;

    /// [`FakePlatform::approve_web_login`].
    fn approve_web_login(&self, user_id: &str) -> String;

    /// [`FakePlatform::revoke_app_tokens`]; returns how many were live.
    fn revoke_app_tokens(&self) -> usize;

    /// [`FakePlatform::endpoints_for`].
    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str>;
}

/// Who a platform fake is: the constant answers of [`FakePlatform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The platform's name in unilogin's registry ([`FakePlatform::name`]).
    pub name: &'static str,
    /// How messages name the fake ("the {label} fake": `"DingTalk"`).
    pub label: &'static str,
    /// [`FakePlatform::demo_user_id`].
    pub demo_user_id: &'static str,
    /// [`FakePlatform::outsider_user_id`].
    pub outsider_user_id: Option<&'static str>,
}

/// A running platform fake (see the platform modules). Dropping it stops its server.
///
/// [`base_url`](Self::base_url) and [`credentials`](Self::credentials) need no import; the rest
/// of the harness (users, codes, call counts, faults, the clock) is the [`FakePlatform`] trait:
/// `use unilogin_testkit::FakePlatform as _;`.
pub struct Fake<B: Backend> {
    server: FakeServer,
    backend: Arc<B>,
}

impl<B: Backend> fmt::Debug for Fake<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fake")
            .field("platform", &B::IDENTITY.name)
            .field("base_url", &self.server.base_url())
            .finish_non_exhaustive()
    }
}

/// `127.0.0.1:0`: an ephemeral loopback port.
pub fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

/// `fake`, or a panic that names the fake (`label`) and the bind error.
pub(crate) fn started<B: Backend>(label: &str, fake: io::Result<Fake<B>>) -> Fake<B> {
    match fake {
        Ok(fake) => fake,
        Err(err) => {
            panic!("unilogin-testkit: cannot bind a loopback port for the {label} fake: {err}")
        }
    }
}

impl<B: Backend> Fake<B> {
    /// Serve `backend` (built on the fake's clock) on `addr`.
    pub async fn try_start_with(
        addr: SocketAddr,
        backend: impl FnOnce(&FakeClock) -> B,
    ) -> io::Result<Self> {
        let clock = FakeClock::new();
        let backend = Arc::new(backend(&clock));
        let responder = Arc::new(B::Responder::default());
        let router = B::routes(&backend, FakeRouter::new(clock, responder));
        let (router, harness) = router.build();
        let server = FakeServer::start_on(addr, router, harness).await?;
        Ok(Self { server, backend })
    }

    /// Start the fake with its default apps and users on a chosen address (e.g. a fixed port
    /// for the gateway's sandbox mode).
    pub async fn try_start_on(addr: SocketAddr) -> io::Result<Self> {
        Self::try_start_with(addr, B::new).await
    }

    /// Start the fake with its default apps and users on `127.0.0.1:0`.
    ///
    /// # Panics
    /// If no loopback port can be bound (the machine is out of ports or has no loopback).
    pub async fn start() -> Self {
        started(B::IDENTITY.label, Self::try_start_on(loopback()).await)
    }

    /// The platform side, for the platform module's own methods.
    pub(crate) fn backend(&self) -> &B {
        &self.backend
    }

    /// `http://127.0.0.1:PORT`: the base of every host of the platform alike.
    pub fn base_url(&self) -> &str {
        self.server.base_url()
    }

    /// The credentials of the app the fake acts for (see the platform module).
    pub fn credentials(&self) -> AppCredentials {
        self.backend.credentials()
    }

    /// Remove a person (codes and tokens issued to them stop working).
    pub fn remove_user(&self, user_id: &str) -> Option<FakeUser> {
        self.backend.users().remove(user_id)
    }

    /// A person by id.
    pub fn user(&self, user_id: &str) -> Option<FakeUser> {
        self.backend.users().get(user_id)
    }

    /// Stop the server and wait for it.
    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }
}

impl<B: Backend> FakePlatform for Fake<B> {
    fn name(&self) -> &'static str {
        B::IDENTITY.name
    }

    fn base_url(&self) -> &str {
        self.server.base_url()
    }

    fn credentials(&self) -> AppCredentials {
        self.backend.credentials()
    }

    fn add_user(&self, user: FakeUser) {
        self.backend.users().insert(user);
    }

    fn demo_user_id(&self) -> String {
        B::IDENTITY.demo_user_id.to_owned()
    }

    fn outsider_user_id(&self) -> Option<String> {
        B::IDENTITY.outsider_user_id.map(str::to_owned)
    }

    fn issue_h5_code(&self, user_id: &str) -> String {
        self.backend.issue_h5_code(user_id)
    }

    fn approve_web_login(&self, user_id: &str) -> String {
        self.backend.approve_web_login(user_id)
    }

    fn revoke_app_tokens(&self) {
        let revoked = self.backend.revoke_app_tokens();
        tracing::debug!(
            platform = B::IDENTITY.name,
            revoked,
            "fake: app tokens revoked"
        );
    }

    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str> {
        self.backend.endpoints_for(role)
    }

    fn harness(&self) -> &Harness {
        self.server.harness()
    }
}

/// The `start`, `try_start` and `try_start_on` functions of a platform module, for its
/// `Fake<Backend>` alias `$fake`.
macro_rules! start_functions {
    ($fake:ident) => {
        #[doc = concat!("Start a [`", stringify!($fake), "`] on `127.0.0.1:0` with the default apps and users.")]
        ///
        /// # Panics
        /// If no loopback port can be bound (the machine is out of ports or has no loopback). Use
        /// [`try_start`] to handle that case.
        pub async fn start() -> $fake {
            $fake::start().await
        }

        #[doc = concat!("Start a [`", stringify!($fake), "`] on `127.0.0.1:0`, reporting a bind failure instead of panicking.")]
        pub async fn try_start() -> std::io::Result<$fake> {
            $fake::try_start_on($crate::fake::loopback()).await
        }

        #[doc = concat!("Start a [`", stringify!($fake), "`] on a chosen address (e.g. a fixed port for the gateway's sandbox mode).")]
        pub async fn try_start_on(addr: std::net::SocketAddr) -> std::io::Result<$fake> {
            $fake::try_start_on(addr).await
        }
    };
}
pub(crate) use start_functions;
