//! The people a fake knows, independent of any platform's shapes.
//!
//! A [`FakeUser`] describes a person once; each fake renders it into its platform's documents
//! (DingTalk `topapi/v2/user/get` `result`, `users/me`, Feishu `user_info`, WeCom `user/get`, …).
//! Empty string fields are rendered as *absent*, the way platforms omit fields the app has no
//! permission for, so tests can exercise backup mapping paths.

use crate::table::Table;

/// A person known to a fake. Build with [`FakeUser::new`] and the chainable setters, or with struct
/// update syntax from [`FakeUser::new`] (prefer it over `Default`, which leaves the ids empty).
///
/// ```
/// use unilogin_testkit::FakeUser;
/// let u = FakeUser::new("user042").name("Wang Wu").mobile("13900000042").dept_ids([100, 200]);
/// assert_eq!(u.union_id, "unionid-user042");
/// let v = FakeUser { title: "CTO".into(), admin: true, ..FakeUser::new("boss") };
/// assert!(v.active);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    /// Organisation-scoped user id (DingTalk `userid`, Feishu `user_id`, WeCom `userid`).
    pub user_id: String,
    /// Cross-app id (DingTalk `unionid`, Feishu `union_id`).
    pub union_id: String,
    /// App-scoped id (DingTalk `openId`, Feishu `open_id`).
    pub open_id: String,
    /// Display name.
    pub name: String,
    /// Mobile number without country code; empty = not visible to the app.
    pub mobile: String,
    /// Country calling code without `+` (DingTalk `state_code`), e.g. `"86"`.
    pub country_code: String,
    /// Personal e-mail; empty = not visible.
    pub email: String,
    /// Organisation e-mail (DingTalk `org_email`, Feishu `enterprise_email`, WeCom `biz_mail`).
    pub org_email: String,
    /// Avatar URL; empty = none.
    pub avatar: String,
    /// Employee number; empty = none.
    pub job_number: String,
    /// Job title; empty = none.
    pub title: String,
    /// Department ids the person belongs to.
    pub dept_ids: Vec<u64>,
    /// Account active (activated / not resigned).
    pub active: bool,
    /// Organisation administrator.
    pub admin: bool,
    /// Role names, in order.
    pub roles: Vec<String>,
    /// Organisation the person belongs to; `None` = the fake's home organisation (its default
    /// corp). Someone from another organisation can log in on the web but is not a member.
    pub org: Option<String>,
    /// Hire date in epoch milliseconds, if known.
    pub hired_at_ms: Option<i64>,
}

impl Default for FakeUser {
    fn default() -> Self {
        Self {
            user_id: String::new(),
            union_id: String::new(),
            open_id: String::new(),
            name: String::new(),
            mobile: String::new(),
            country_code: "86".to_owned(),
            email: String::new(),
            org_email: String::new(),
            avatar: String::new(),
            job_number: String::new(),
            title: String::new(),
            dept_ids: Vec::new(),
            active: true,
            admin: false,
            roles: Vec::new(),
            org: None,
            hired_at_ms: None,
        }
    }
}

/// Chainable `String` setters: `pub fn field(self, v: impl Into<String>) -> Self`.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $field(mut self, v: impl Into<String>) -> Self {
                self.$field = v.into();
                self
            }
        )*
    };
}

impl FakeUser {
    /// A member of the home organisation with ids derived from `user_id`
    /// (`unionid-<id>`, `openid-<id>`), `name = user_id`, department 1, active, no contact fields.
    pub fn new(user_id: impl Into<String>) -> Self {
        let user_id = user_id.into();
        Self {
            union_id: format!("unionid-{user_id}"),
            open_id: format!("openid-{user_id}"),
            name: user_id.clone(),
            dept_ids: vec![1],
            user_id,
            ..Self::default()
        }
    }

    setters! {
        /// Set the cross-app id.
        union_id;
        /// Set the app-scoped id.
        open_id;
        /// Set the display name.
        name;
        /// Set the mobile number (without country code).
        mobile;
        /// Set the country calling code (without `+`).
        country_code;
        /// Set the personal e-mail.
        email;
        /// Set the organisation e-mail.
        org_email;
        /// Set the avatar URL.
        avatar;
        /// Set the employee number.
        job_number;
        /// Set the job title.
        title;
    }
    /// Set the departments.
    pub fn dept_ids(mut self, v: impl IntoIterator<Item = u64>) -> Self {
        self.dept_ids = v.into_iter().collect();
        self
    }
    /// Set whether the account is active.
    pub fn active(self, active: bool) -> Self {
        Self { active, ..self }
    }
    /// Set whether the person is an organisation administrator.
    pub fn admin(self, admin: bool) -> Self {
        Self { admin, ..self }
    }
    /// Set the role names.
    pub fn roles<S: Into<String>>(mut self, v: impl IntoIterator<Item = S>) -> Self {
        self.roles = v.into_iter().map(Into::into).collect();
        self
    }
    /// Put the person in another organisation (not the fake's home organisation).
    pub fn in_org(mut self, org: impl Into<String>) -> Self {
        self.org = Some(org.into());
        self
    }
    /// Set the hire date (epoch milliseconds).
    pub fn hired_at_ms(mut self, v: i64) -> Self {
        self.hired_at_ms = Some(v);
        self
    }

    /// The organisation this person belongs to, given the fake's home organisation.
    pub fn org_or<'a>(&'a self, home_org: &'a str) -> &'a str {
        self.org.as_deref().unwrap_or(home_org)
    }
}

/// The users of one fake, keyed by `user_id` (unique within a fake, across organisations).
#[derive(Debug, Default)]
pub struct UserDirectory {
    users: Table<String, FakeUser>,
}

impl UserDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a user, replacing any user with the same `user_id`.
    pub fn insert(&self, user: FakeUser) {
        self.users.insert(user.user_id.clone(), user);
    }

    /// Remove a user; returns it if it existed.
    pub fn remove(&self, user_id: &str) -> Option<FakeUser> {
        self.users.remove(user_id)
    }

    /// The user with this `user_id`.
    pub fn get(&self, user_id: &str) -> Option<FakeUser> {
        self.users.get(user_id)
    }

    /// The first user matching `pred` (in `user_id` order).
    pub fn find(&self, pred: impl Fn(&FakeUser) -> bool) -> Option<FakeUser> {
        self.users.find(pred)
    }

    /// Every user, in `user_id` order.
    pub fn all(&self) -> Vec<FakeUser> {
        self.users.values()
    }
}

impl FromIterator<FakeUser> for UserDirectory {
    fn from_iter<I: IntoIterator<Item = FakeUser>>(users: I) -> Self {
        Self {
            users: users.into_iter().map(|u| (u.user_id.clone(), u)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_derives_ids_and_setters_apply() {
        let u = FakeUser::new("u1")
            .name("N")
            .roles(["A", "B"])
            .in_org("other")
            .admin(true);
        assert_eq!(u.open_id, "openid-u1");
        assert_eq!(u.roles, vec!["A".to_owned(), "B".to_owned()]);
        assert_eq!(u.org_or("home"), "other");
        assert_eq!(FakeUser::new("x").org_or("home"), "home");
        assert!(u.admin && u.active);
    }

    #[test]
    fn directory_replaces_and_finds() {
        let d = UserDirectory::new();
        d.insert(FakeUser::new("a"));
        d.insert(FakeUser::new("a").name("second"));
        d.insert(FakeUser::new("b"));
        assert_eq!(d.all().len(), 2);
        assert_eq!(d.get("a").map(|u| u.name), Some("second".into()));
        assert_eq!(
            d.find(|u| u.union_id == "unionid-b").map(|u| u.user_id),
            Some("b".into())
        );
        assert!(d.remove("a").is_some());
        assert!(d.get("a").is_none());
    }
}
