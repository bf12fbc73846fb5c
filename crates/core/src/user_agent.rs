//! `User-Agent` detection: is the request inside a platform's client, and is it a phone?
//!
//! The markers come from the platforms' registrations (the core knows no platform by name).
//! A `User-Agent` is advisory only and trivially spoofed: it chooses which login *flow* to
//! offer, never who the user is.

use crate::platform::Flow;
use crate::registry::Registry;

/// What a `User-Agent` says about the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The registered platform whose client the request comes from, if any.
    pub platform: Option<&'static str>,
    /// Whether the device is a phone or tablet.
    pub mobile: bool,
}

impl ClientInfo {
    /// Detects the client from a `User-Agent` using the registered platforms' markers.
    ///
    /// ```
    /// use unilogin_core::user_agent::ClientInfo;
    /// let pc = ClientInfo::detect("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0");
    /// assert!(!pc.mobile && pc.platform.is_none());
    /// ```
    pub fn detect(user_agent: &str) -> Self {
        let markers = Registry::all()
            .into_iter()
            .map(|r| (r.name, r.user_agent_markers));
        Self::detect_with(user_agent, markers)
    }

    /// Detects the client with explicit `(platform, markers)` pairs, checked in order; a
    /// platform with more specific markers must come first.
    pub fn detect_with<'m>(
        user_agent: &str,
        markers: impl IntoIterator<Item = (&'static str, &'m [&'m str])>,
    ) -> Self {
        let ua = user_agent.to_ascii_lowercase();
        let platform = markers
            .into_iter()
            .find(|(_, ms)| {
                ms.iter()
                    .any(|m| !m.is_empty() && ua.contains(&m.to_ascii_lowercase()))
            })
            .map(|(name, _)| name);
        let mobile = ["mobile", "android", "iphone", "ipad", "harmonyos"]
            .iter()
            .any(|m| ua.contains(m));
        Self { platform, mobile }
    }

    /// Whether the request comes from inside `platform`'s client.
    pub fn is_inside(&self, platform: &str) -> bool {
        self.platform
            .is_some_and(|p| p.eq_ignore_ascii_case(platform))
    }

    /// The flow to offer for `platform`: inside that platform's client (phone or desktop
    /// client, both run the JSAPI) the H5 login-free flow, anywhere else the web/QR flow.
    pub fn flow_for(&self, platform: &str) -> Flow {
        if self.is_inside(platform) {
            Flow::H5
        } else {
            Flow::Web
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARKERS: [(&str, &[&str]); 3] = [
        ("wecom", &["wxwork"]),
        ("dingtalk", &["dingtalk"]),
        ("feishu", &["lark/", "larklocale", "feishu"]),
    ];

    fn detect(ua: &str) -> ClientInfo {
        ClientInfo::detect_with(ua, MARKERS)
    }

    #[test]
    fn real_user_agents() {
        let cases = [
            (
                "Mozilla/5.0 (Linux; Android 12) Mobile Safari/537.36 AliApp(DingTalk/5.1.5) com.alibaba.android.rimet/13534898 Channel/212200 language/zh-CN",
                Some("dingtalk"),
                true,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) Safari/537.36 dingtalk-win/1.0.0 nw(0.14.7) DingTalk(7.8.10-Release.250724002) Mojo/1.0.0",
                Some("dingtalk"),
                false,
            ),
            (
                "Mozilla/5.0 (Linux; Android 11) Lark/6.9.9 LarkLocale/zh_CN ChannelName/Feishu TTWebView/1",
                Some("feishu"),
                true,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Lark/7.12.7 Chrome/120 LarkLocale/zh_CN ChannelName/Feishu",
                Some("feishu"),
                false,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 wxwork/4.1.6 MicroMessenger/7.0.1 Language/zh",
                Some("wecom"),
                true,
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0) Language/zh wxwork/4.1.10 (MicroMessenger/6.2) WindowsWechat",
                Some("wecom"),
                false,
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 MicroMessenger/8.0.40",
                None,
                true,
            ),
            ("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0", None, false),
            ("", None, false),
        ];
        for (ua, platform, mobile) in cases {
            let c = detect(ua);
            assert_eq!(c.platform, platform, "{ua}");
            assert_eq!(c.mobile, mobile, "{ua}");
        }
    }

    #[test]
    fn flow_choice() {
        let dt = detect("Mozilla/5.0 (iPhone) Mobile AliApp(DingTalk/7.0)");
        assert_eq!(dt.flow_for("dingtalk"), Flow::H5);
        assert_eq!(dt.flow_for("feishu"), Flow::Web);
        assert_eq!(
            detect("Mozilla/5.0 (iPhone) Mobile Safari").flow_for("dingtalk"),
            Flow::Web
        );
    }
}
