//! The subject policy: which of a person's platform identifiers is *the* identifier of their
//! login (the session's `sub`, the identity store's key).
//!
//! Platforms hand out up to three ids for one person, with different scopes:
//!
//! | [`SubjectKind`] | scope | DingTalk | Feishu / Lark | WeCom | OIDC |
//! |---|---|---|---|---|---|
//! | `user_id` | the organisation (tenant) | `userid` | `user_id` (needs `contact:user.employee_id:readonly`) | `userid` | `sub` |
//! | `union_id` | every app of the same developer / organisation | `unionid` | `union_id` | `open_userid` (third-party apps) | — |
//! | `open_id` | this one app | `openId` (web flow) | `open_id` | — | — |
//!
//! Each platform's default rules declare its default (`subject:` in the rules file; `user_id`
//! when they say nothing); a tenant chooses another with `identity.subject` in its
//! configuration ([`IdentityPolicy`](crate::identity::IdentityPolicy)). A login succeeds
//! whenever the chosen identifier is present and fails with [`Error::Mapping`] naming it when
//! it is not: no other identifier is ever put in its place.
//!
//! [`Error::Mapping`]: crate::Error::Mapping

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which identifier is the subject. See the [module docs](self) for what each means per
/// platform.
///
/// ```
/// use unilogin_core::mapping::SubjectKind;
/// assert_eq!("union_id".parse::<SubjectKind>(), Ok(SubjectKind::UnionId));
/// assert_eq!(SubjectKind::OpenId.to_string(), "open_id");
/// assert!("email".parse::<SubjectKind>().is_err());
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// The platform's id of the person inside the organisation (tenant-scoped); the default
    /// of rules that declare none.
    #[default]
    UserId,
    /// The id shared by every app of one developer or organisation (cross-app).
    UnionId,
    /// The id scoped to this one app (app-scoped).
    OpenId,
}

impl SubjectKind {
    /// Every kind, in the order above.
    pub const ALL: [SubjectKind; 3] = [
        SubjectKind::UserId,
        SubjectKind::UnionId,
        SubjectKind::OpenId,
    ];

    /// `"user_id"`, `"union_id"` or `"open_id"`: the profile field that holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::UserId => "user_id",
            SubjectKind::UnionId => "union_id",
            SubjectKind::OpenId => "open_id",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no [`SubjectKind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a subject kind (user_id, union_id or open_id)")]
pub struct UnknownSubjectKind(pub String);

impl FromStr for SubjectKind {
    type Err = UnknownSubjectKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SubjectKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim())
            .ok_or_else(|| UnknownSubjectKind(s.chars().take(32).collect()))
    }
}

/// The subject of a login: which identifier was chosen and its value (equal to that field of
/// the profile). Displays as the value.
///
/// ```
/// use unilogin_core::mapping::{Subject, SubjectKind};
/// let s = Subject { kind: SubjectKind::UnionId, value: "on_42".into() };
/// assert_eq!(s.to_string(), "on_42");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// Which identifier it is.
    pub kind: SubjectKind,
    /// Its value.
    pub value: String,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}
