//! Profile normalisation, applied by the engine to every platform's profile after its rules:
//!
//! - **Text fields** (ids, name, contact data, avatar, …) are trimmed; what is empty after
//!   trimming is absent (`None`), never `Some("")`.
//! - **Mobile numbers** lose their separators (spaces, `-`, `.`, `(`, `)`, `/`) and their
//!   country code: `mobile` is the national number in digits, and the country calling code
//!   (digits, no `+`) is in `mobile_country_code` wherever the platform reported it — in a
//!   separate field (DingTalk `state_code`), or in the number itself (`+86 138…`, `0086…`,
//!   Feishu's `+8613800000000`). A country code written in the number wins over a separate
//!   field. A value that is not a phone number once the separators are gone (letters, an
//!   extension) is kept as written, trimmed.
//! - **E-mail addresses** keep their case for display; the matching form (trimmed, lower
//!   case) is [`UserProfile::email_for_matching`](super::UserProfile::email_for_matching).

/// Characters written between the digit groups of a phone number.
fn is_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t')
}

/// The two-digit ITU-T E.164 country calling codes. With `1` and `7` (one digit), every other
/// code is three digits: the codes are a prefix code, so the length of the code at the start
/// of an international number follows from its first digits.
const TWO_DIGIT_CODES: [u8; 44] = [
    20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56,
    57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98,
];

/// The length of the country calling code at the start of `digits` (an international number
/// without its `+` / `00`), or `None` when it cannot start with one (a leading `0`, too few
/// digits).
pub(crate) fn calling_code_len(digits: &str) -> Option<usize> {
    let b = digits.as_bytes();
    let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit()).map(|c| c - b'0');
    let first = digit(0)?;
    let len = match first {
        0 => return None,
        1 | 7 => 1,
        _ => {
            let two = first * 10 + digit(1)?;
            if TWO_DIGIT_CODES.contains(&two) {
                2
            } else {
                digit(2)?;
                3
            }
        }
    };
    // A number is more than its country code.
    (b.len() > len).then_some(len)
}

/// A country code as reported in a separate field (`"86"`, `"+86"`, `86`): its digits, or
/// `None` when that is not one to three digits.
pub(crate) fn country_code(raw: &str) -> Option<String> {
    let t = raw.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    let t = t.strip_prefix("00").unwrap_or(t).trim_start_matches('0');
    (!t.is_empty() && t.len() <= 3 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_string())
}

/// A normalised mobile number: the national number and the country calling code, if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mobile {
    pub(crate) number: String,
    pub(crate) country_code: Option<String>,
}

/// Normalises a mobile number as the platform wrote it (`raw`, trimmed and non-empty) with the
/// country code the platform reported separately (`reported`, already [`country_code`]).
/// `bare_cn`: the rule asked for `strip_country_code`, which has always also read a bare
/// `86-` / `86 ` prefix as China's code.
pub(crate) fn mobile(raw: &str, reported: Option<String>, bare_cn: bool) -> Mobile {
    let t = raw.trim();
    let as_written = |country_code| Mobile {
        number: t.to_string(),
        country_code,
    };
    let digits_of = |s: &str| -> Option<String> {
        let d: String = s.chars().filter(|c| !is_separator(*c)).collect();
        (!d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
    };
    let international = t
        .strip_prefix('+')
        .or_else(|| t.strip_prefix("00"))
        .map(str::trim_start);
    if let Some(rest) = international {
        return match digits_of(rest) {
            Some(d) => match calling_code_len(&d) {
                Some(n) => Mobile {
                    country_code: Some(d[..n].to_string()),
                    number: d[n..].to_string(),
                },
                None => as_written(reported),
            },
            None => as_written(reported),
        };
    }
    // A bare leading group equal to the reported code (`86-138…` with `state_code: 86`), or
    // China's under `strip_country_code`.
    let bare = reported
        .clone()
        .or_else(|| bare_cn.then(|| "86".to_string()))
        .and_then(|cc| {
            let rest = t.strip_prefix(cc.as_str())?;
            let after = rest.strip_prefix(is_separator)?;
            Some((cc, after))
        });
    match bare {
        Some((cc, rest)) => match digits_of(rest) {
            Some(number) => Mobile {
                number,
                country_code: Some(cc),
            },
            None => as_written(reported),
        },
        None => match digits_of(t) {
            Some(number) => Mobile {
                number,
                country_code: reported,
            },
            None => as_written(reported),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(raw: &str, reported: Option<&str>, bare_cn: bool) -> (String, Option<String>) {
        let r = mobile(raw, reported.and_then(country_code), bare_cn);
        (r.number, r.country_code)
    }

    fn cc(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn calling_codes_follow_the_prefix_structure() {
        for (digits, want) in [
            ("15551234567", Some(1)),
            ("74951234567", Some(1)),
            ("8613800000000", Some(2)),
            ("442079460958", Some(2)),
            ("85212345678", Some(3)),
            ("886912345678", Some(3)),
            ("35312345678", Some(3)),
            ("97150123456", Some(3)),
            ("0123", None),
            ("86", None),
            ("8", None),
            ("", None),
            ("85", None),
        ] {
            assert_eq!(calling_code_len(digits), want, "{digits}");
        }
    }

    #[test]
    fn mobiles_lose_separators_and_their_country_code() {
        let cases = [
            // Feishu: the code inside the number.
            ("+8613800000000", None, false, "13800000000", cc("86")),
            ("+86 138-0000-0001", None, false, "13800000001", cc("86")),
            ("0086 13800000000", None, false, "13800000000", cc("86")),
            ("+1 (425) 555-1212", None, false, "4255551212", cc("1")),
            ("+852 1234 5678", None, false, "12345678", cc("852")),
            // DingTalk: the national number and `state_code` apart.
            ("13800000000", Some("86"), false, "13800000000", cc("86")),
            ("138 0000 0001", Some("+86"), false, "13800000001", cc("86")),
            ("86-13800000000", Some("86"), false, "13800000000", cc("86")),
            // A code in the number wins over the separate field.
            ("+85212345678", Some("86"), false, "12345678", cc("852")),
            // WeCom: bare, no code anywhere.
            ("13800000000", None, false, "13800000000", None),
            ("138-0000-0001", None, false, "13800000001", None),
            // `strip_country_code`'s bare form.
            ("86-13800000000", None, true, "13800000000", cc("86")),
            ("86-13800000000", None, false, "8613800000000", None),
            ("8613800000000", None, true, "8613800000000", None),
            // Not a phone number: kept as written.
            ("+86 138 ext. 5", None, false, "+86 138 ext. 5", None),
            ("call me", Some("86"), false, "call me", cc("86")),
            ("+86", None, false, "+86", None),
            // A separate field that is no country code is ignored.
            ("13800000000", Some("China"), false, "13800000000", None),
        ];
        for (raw, reported, bare_cn, number, code) in cases {
            assert_eq!(
                m(raw, reported, bare_cn),
                (number.to_string(), code),
                "{raw:?} {reported:?}"
            );
        }
    }

    #[test]
    fn separate_country_codes_are_digits() {
        assert_eq!(country_code(" 86 "), cc("86"));
        assert_eq!(country_code("+852"), cc("852"));
        assert_eq!(country_code("0086"), cc("86"));
        assert_eq!(country_code(""), None);
        assert_eq!(country_code("1234"), None);
        assert_eq!(country_code("CN"), None);
    }
}
