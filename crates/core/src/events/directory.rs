//! What an event means for the directory: a person left, or their profile changed.
//!
//! Each platform names its lifecycle events its own way (DingTalk `user_leave_org`, Feishu
//! `contact.user.deleted_v3` / `contact.user.updated_v3` with `status.is_resigned`, WeCom
//! `change_contact` / `delete_user` or `update_user` with `Status` 2 or 5); its codec's
//! [`EventCodec::changes`](super::EventCodec::changes) turns them into [`DirectoryChange`]s so
//! that a receiver revokes and invalidates without knowing the platform.

use std::fmt;

/// The ids an event names one person by. At least one is present in every change a codec
/// returns. `Debug` shows which ids are present, not their values (they are personal data).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PersonIds {
    /// The id inside the organisation (DingTalk `userid`, WeCom `userid`, Feishu `user_id`).
    pub user_id: Option<String>,
    /// The cross-app id (DingTalk `unionid`, Feishu `union_id`).
    pub union_id: Option<String>,
    /// The app-scoped id (Feishu `open_id`, WeCom `open_userid`).
    pub open_id: Option<String>,
    /// The organisation the event is about (DingTalk `CorpId`, Feishu `tenant_key`, WeCom
    /// corp id), when the event names it.
    pub org_id: Option<String>,
}

impl PersonIds {
    /// The ids present, in the order user id, union id, open id.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        [&self.user_id, &self.union_id, &self.open_id]
            .into_iter()
            .filter_map(|v| v.as_deref())
    }

    /// Whether no person id (user, union or open id) is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl fmt::Debug for PersonIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = |v: &Option<String>| if v.is_some() { "***" } else { "-" };
        f.debug_struct("PersonIds")
            .field("user_id", &mark(&self.user_id))
            .field("union_id", &mark(&self.union_id))
            .field("open_id", &mark(&self.open_id))
            .field("org_id", &mark(&self.org_id))
            .finish()
    }
}

/// Why a person lost access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeaveReason {
    /// Left the organisation, or was removed from it (DingTalk `user_leave_org`, WeCom
    /// `delete_user`, Feishu `deleted_v3`, `is_resigned` / `is_exited`).
    Left,
    /// Disabled / frozen but still in the directory (Feishu `is_frozen`, WeCom `Status` 2).
    Disabled,
}

impl LeaveReason {
    /// `"left"` or `"disabled"` (webhook payloads, logs, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Disabled => "disabled",
        }
    }
}

/// One directory change an event carries.
///
/// ```
/// use unilogin_core::events::{DirectoryChange, LeaveReason, PersonIds};
/// let change = DirectoryChange::Left {
///     ids: PersonIds { user_id: Some("manager4521".into()), ..PersonIds::default() },
///     reason: LeaveReason::Left,
/// };
/// assert_eq!(change.ids().iter().collect::<Vec<_>>(), ["manager4521"]);
/// assert!(!format!("{change:?}").contains("manager4521"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryChange {
    /// The person must lose access: every session and refresh token is revoked.
    Left {
        /// Who.
        ids: PersonIds,
        /// Why.
        reason: LeaveReason,
    },
    /// The person's profile changed: cached profile data is stale.
    Updated {
        /// Who.
        ids: PersonIds,
    },
}

impl DirectoryChange {
    /// The person the change is about.
    pub fn ids(&self) -> &PersonIds {
        match self {
            Self::Left { ids, .. } | Self::Updated { ids } => ids,
        }
    }

    /// `"left"`, `"disabled"` or `"updated"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Left { reason, .. } => reason.as_str(),
            Self::Updated { .. } => "updated",
        }
    }
}

/// What a store app's installing organisation granted, as its authorisation event tells
/// (DingTalk `org_suite_auth`, WeCom `create_auth`, Feishu `app_open`). `Debug` never shows the
/// permanent code.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InstallInfo {
    /// The organisation's display name, when sent.
    pub org_name: Option<String>,
    /// The app's agent id inside the organisation (DingTalk `agentid`, WeCom `agentid`).
    pub agent_id: Option<String>,
    /// The user who installed the app, when sent (personal data: not shown in `Debug`).
    pub installer: Option<String>,
    /// The organisation's permanent authorisation code (DingTalk `permanent_code`, WeCom
    /// `permanent_code`): a credential, stored encrypted like a secret.
    pub permanent_code: Option<crate::AppSecret>,
    /// A temporary authorisation code to exchange for the permanent code (WeCom `AuthCode`,
    /// DingTalk's old `tmp_auth_code`): a single-use credential.
    pub temporary_code: Option<crate::AppSecret>,
}

impl fmt::Debug for InstallInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InstallInfo")
            .field("org_name", &self.org_name)
            .field("agent_id", &self.agent_id)
            .field("installer", &self.installer.as_ref().map(|_| "***"))
            .field(
                "permanent_code",
                &self.permanent_code.as_ref().map(|_| "***"),
            )
            .field(
                "temporary_code",
                &self.temporary_code.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// One store-app (ISV) lifecycle change an event carries (see [`crate::isv`]): a pushed
/// ticket, or an organisation installing, re-authorising or removing the app. A receiver
/// offers tickets to its [`TicketStore`](crate::isv::TicketStore) and applies the rest to its
/// tenant entries (create, update, disable) and token cache. `Debug` never shows the ticket
/// nor the permanent code.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use unilogin_core::events::StoreAppChange;
/// use unilogin_core::isv::{OrgId, PushedTicket, TicketApp};
/// use unilogin_core::PlatformName;
/// let app = TicketApp::new(PlatformName::new("dingtalk").unwrap(), "suiteabc").unwrap();
/// let at = UNIX_EPOCH + Duration::from_millis(1_608_639_648_000);
/// let change = StoreAppChange::TicketPushed {
///     app: app.clone(),
///     ticket: PushedTicket::new("s3cr3t-ticket", at, SystemTime::now()).unwrap(),
/// };
/// assert_eq!(change.kind(), "ticket_pushed");
/// assert!(!format!("{change:?}").contains("s3cr3t"));
/// let gone = StoreAppChange::Uninstalled { app, org: OrgId::new("dingcorp").unwrap() };
/// assert_eq!(gone.org().map(OrgId::as_str), Some("dingcorp"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreAppChange {
    /// The platform pushed a ticket (DingTalk / WeCom `suite_ticket`, Feishu `app_ticket`).
    TicketPushed {
        /// Whose ticket.
        app: crate::isv::TicketApp,
        /// The ticket and its push time.
        ticket: crate::isv::PushedTicket,
    },
    /// An organisation installed (authorised) the app.
    Installed {
        /// The app.
        app: crate::isv::TicketApp,
        /// The installing organisation.
        org: crate::isv::OrgId,
        /// What the event says about the installation.
        info: InstallInfo,
    },
    /// An installation code to redeem for the organisation and its permanent code (WeCom
    /// `create_auth` and `reset_permanent_code`, whose events do not name the organisation):
    /// see [`Platform::redeem_install_code`](crate::platform::Platform::redeem_install_code).
    /// `Debug` never shows the code.
    InstallCode {
        /// The app.
        app: crate::isv::TicketApp,
        /// The single-use code.
        code: crate::AppSecret,
    },
    /// An organisation changed what the app may access (scopes, visible users).
    AuthChanged {
        /// The app.
        app: crate::isv::TicketApp,
        /// The organisation.
        org: crate::isv::OrgId,
    },
    /// An organisation removed the app, stopped it, or was dissolved: it can no longer log in
    /// and its tokens must be evicted.
    Uninstalled {
        /// The app.
        app: crate::isv::TicketApp,
        /// The organisation.
        org: crate::isv::OrgId,
    },
}

impl StoreAppChange {
    /// The app the change is about.
    pub fn app(&self) -> &crate::isv::TicketApp {
        match self {
            Self::TicketPushed { app, .. }
            | Self::Installed { app, .. }
            | Self::InstallCode { app, .. }
            | Self::AuthChanged { app, .. }
            | Self::Uninstalled { app, .. } => app,
        }
    }

    /// The organisation the change is about (none for a ticket).
    pub fn org(&self) -> Option<&crate::isv::OrgId> {
        match self {
            Self::TicketPushed { .. } | Self::InstallCode { .. } => None,
            Self::Installed { org, .. }
            | Self::AuthChanged { org, .. }
            | Self::Uninstalled { org, .. } => Some(org),
        }
    }

    /// `"ticket_pushed"`, `"installed"`, `"install_code"`, `"auth_changed"` or `"uninstalled"`
    /// (logs, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TicketPushed { .. } => "ticket_pushed",
            Self::Installed { .. } => "installed",
            Self::InstallCode { .. } => "install_code",
            Self::AuthChanged { .. } => "auth_changed",
            Self::Uninstalled { .. } => "uninstalled",
        }
    }
}
