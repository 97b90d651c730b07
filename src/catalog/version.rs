//! `X-Broker-API-Version`: parsing the header and asking what a version supports.

use std::fmt;

/// An OSB API version as sent by the platform in `X-Broker-API-Version` (`MAJOR.MINOR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

impl ApiVersion {
    /// The oldest version this broker serves; older platforms get 412.
    pub const MIN: ApiVersion = ApiVersion {
        major: 2,
        minor: 13,
    };

    /// The newest version whose fields this broker knows; newer 2.x minors are answered as this one.
    pub const LATEST: ApiVersion = ApiVersion {
        major: 2,
        minor: 17,
    };

    /// Parses a header value such as `2.13`. Surrounding whitespace is ignored; anything else
    /// that is not two decimal numbers joined by one dot (`2`, `2.x`, `2.13.1`, `v2.13`) is `None`.
    pub fn parse(header: &str) -> Option<ApiVersion> {
        let (major, minor) = header.trim().split_once('.')?;
        Some(ApiVersion {
            major: number(major)?,
            minor: number(minor)?,
        })
    }

    /// True for 2.13 and every later 2.x.
    pub fn is_supported(&self) -> bool {
        self.major == Self::MIN.major && self.minor >= Self::MIN.minor
    }

    /// True if this is 2.`minor` or later within major version 2; used to gate response fields.
    pub fn at_least(&self, minor: u16) -> bool {
        self.major == 2 && self.minor >= minor
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A non-empty run of ASCII digits (no sign, no inner spaces) that fits a u16.
fn number(part: &str) -> Option<u16> {
    let part = part.trim();
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::ApiVersion;

    fn v(major: u16, minor: u16) -> ApiVersion {
        ApiVersion { major, minor }
    }

    #[test]
    fn parses_major_dot_minor_with_surrounding_whitespace() {
        assert_eq!(ApiVersion::parse("2.13"), Some(v(2, 13)));
        assert_eq!(ApiVersion::parse(" 2.17\t"), Some(v(2, 17)));
        assert_eq!(ApiVersion::parse("2 . 14"), Some(v(2, 14)));
        assert_eq!(ApiVersion::parse("3.0"), Some(v(3, 0)));
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "", "abc", "2", "2.", ".13", "2.13.1", "v2.13", "2.x", "+2.13", "2.-1", "2.99999",
            "2,13", "2 1.13",
        ] {
            assert_eq!(ApiVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn supports_2_13_and_later_2_x_only() {
        let supported = |h: &str| ApiVersion::parse(h).is_some_and(|v| v.is_supported());
        assert!(supported("2.13"));
        assert!(supported("2.17"));
        assert!(supported("2.99"));
        assert!(!supported("2.12"));
        assert!(!supported("3.0"));
        assert!(!supported("1.14"));
        assert!(ApiVersion::MIN.is_supported());
    }

    #[test]
    fn at_least_compares_minor_within_major_2() {
        assert!(v(2, 14).at_least(14));
        assert!(v(2, 17).at_least(15));
        assert!(!v(2, 13).at_least(14));
        assert!(!v(3, 20).at_least(14));
        assert_eq!(v(2, 13).to_string(), "2.13");
    }
}
