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
