//! Validated values from outside: parse at the edge, then trust the type.

use std::fmt;

use portcullis_proto::{CodeInput, DeviceFields};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// An email address, trimmed and in lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ApiError> {
        let email = raw.trim().to_lowercase();
        if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err(ApiError::field(field, "Must be a valid email address"));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 3 to 32 of `a-z 0-9 _ . -`, stored in lower case; never contains `@`,
/// so a login name is unambiguously an email or a username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim().to_lowercase();
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !(3..=32).contains(&name.len()) || !valid_chars {
            return Err(ApiError::field(
                "username",
                "Must be 3 to 32 characters: letters, digits, '_', '.' or '-'",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user types to log in: an email or a username, in lower case.
#[derive(Debug, Clone)]
pub struct LoginName(String);

impl LoginName {
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let name = raw.trim().to_lowercase();
        if name.is_empty() || name.len() > 254 {
            return Err(ApiError::field(
                "email_or_username",
                "This field is required",
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A code normalised to exactly `digits` digits (`42` → `0042`).
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(****)")
    }
}

impl Code {
    pub fn parse(field: &str, input: &CodeInput, digits: u32) -> Result<Self, ApiError> {
        let invalid = || ApiError::field(field, format!("Must be a {digits}-digit code"));
        let value = match input {
            CodeInput::Number(n) => *n,
            CodeInput::Text(s) => {
                let s = s.trim();
                if s.is_empty()
                    || s.len() > digits as usize
                    || !s.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(invalid());
                }
                s.parse().map_err(|_| invalid())?
            }
        };
        if value >= 10u64.pow(digits) {
            return Err(invalid());
        }
        Ok(Self(format!("{value:0width$}", width = digits as usize)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Text a client names something with (a device, an operating system, a
/// place, a person): at most `MAX` characters and never blank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Label<const MAX: usize>(String);

impl<const MAX: usize> Label<MAX> {
    pub fn parse(field: &str, raw: String) -> Result<Self, ApiError> {
        if raw.trim().is_empty() || raw.chars().count() > MAX {
            return Err(ApiError::field(
                field,
                format!("Must be 1 to {MAX} characters"),
            ));
        }
        Ok(Self(raw))
    }

    /// An optional field: absent stays absent, present must be valid.
    pub fn optional(field: &str, raw: Option<String>) -> Result<Option<Self>, ApiError> {
        raw.map(|v| Self::parse(field, v)).transpose()
    }

    /// A value the server made itself, or read back from its storage where
    /// it was checked when written.
    pub(crate) fn trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A client's name for its device: what device sessions are keyed by.
pub type DeviceId = Label<128>;
/// A device's, operating system's or place's name.
pub type DisplayName = Label<200>;
/// A push-notification token (Firebase Cloud Messaging).
pub type PushToken = Label<4096>;
/// A person's name, trimmed.
pub type PersonName = Label<100>;
/// An API key's name.
pub type KeyName = Label<100>;

/// What an API key may do: names of `[a-z][a-z0-9_.:-]{0,63}`, at most 32,
/// without repeats, in order. Portcullis gives meaning to `dev_login`,
/// `sessions` and `introspect`; other names are the team's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(Vec<String>);

impl Scopes {
    const MAX: usize = 32;

    pub fn parse(raw: Vec<String>) -> Result<Self, ApiError> {
        let valid = |scope: &str| {
            let mut chars = scope.chars();
            scope.len() <= 64
                && chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.:-".contains(c))
        };
        if let Some(bad) = raw.iter().find(|scope| !valid(scope)) {
            return Err(ApiError::field(
                "scopes",
                format!("`{bad}` is not a scope: 1 to 64 of a-z, 0-9, '_', '.', ':', '-', starting with a letter"),
            ));
        }
        let mut scopes = raw;
        scopes.sort();
        scopes.dedup();
        if scopes.len() > Self::MAX {
            return Err(ApiError::field(
                "scopes",
                format!("At most {} scopes", Self::MAX),
            ));
        }
        Ok(Self(scopes))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl PersonName {
    /// Trimmed; blank means no name.
    pub fn parse_optional(raw: Option<String>) -> Result<Option<Self>, ApiError> {
        match raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) {
            Some(name) => Self::parse("name", name).map(Some),
            None => Ok(None),
        }
    }
}

/// The platforms of SPEC §3.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    Web,
    Mobile,
    Desktop,
    Tablet,
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
    Unknown,
}

impl Platform {
    const ALL: [Platform; 10] = [
        Platform::Web,
        Platform::Mobile,
        Platform::Desktop,
        Platform::Tablet,
        Platform::Ios,
        Platform::Android,
        Platform::Windows,
        Platform::Macos,
        Platform::Linux,
        Platform::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Web => "web",
            Platform::Mobile => "mobile",
            Platform::Desktop => "desktop",
            Platform::Tablet => "tablet",
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Windows => "windows",
            Platform::Macos => "macos",
            Platform::Linux => "linux",
            Platform::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }
}

/// What a client tells about its device, every field optional and checked.
/// Sessions remember it; login step 1 keeps it on its email key for step 2.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// When absent, a new session gets a generated one.
    pub id: Option<DeviceId>,
    pub name: Option<DisplayName>,
    pub platform: Option<Platform>,
    pub operating_system: Option<DisplayName>,
    pub location: Option<DisplayName>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub fcm_token: Option<PushToken>,
}

impl Device {
    /// One device from the fields in any documented spelling: the
    /// `device_info` object's first, then the top-level ones.
    pub fn parse(fields: DeviceFields) -> Result<Self, ApiError> {
        let info = fields.device_info.unwrap_or_default();
        let platform = info.platform.or(fields.platform);
        let platform = match platform {
            None => None,
            Some(raw) => Some(Platform::parse(&raw).ok_or_else(|| {
                let names: Vec<_> = Platform::ALL.iter().map(|p| p.as_str()).collect();
                ApiError::field("platform", format!("Must be one of: {}", names.join(", ")))
            })?),
        };
        if info.latitude.is_some_and(|v| !(-90.0..=90.0).contains(&v)) {
            return Err(ApiError::field("latitude", "Must be between -90 and 90"));
        }
        if info
            .longitude
            .is_some_and(|v| !(-180.0..=180.0).contains(&v))
        {
            return Err(ApiError::field("longitude", "Must be between -180 and 180"));
        }
        Ok(Device {
            id: Label::optional("device_id", info.device_id.or(fields.device_id))?,
            name: Label::optional("device_name", info.device.or(fields.device_name))?,
            platform,
            operating_system: Label::optional("operating_system", info.operating_system)?,
            location: Label::optional("location", info.location)?,
            latitude: info.latitude,
            longitude: info.longitude,
            fcm_token: Label::optional("fcm_token", fields.fcm_token)?,
        })
    }

    /// This device's fields, with `earlier`'s where this one has none.
    pub fn or(self, earlier: Device) -> Device {
        Device {
            id: self.id.or(earlier.id),
            name: self.name.or(earlier.name),
            platform: self.platform.or(earlier.platform),
            operating_system: self.operating_system.or(earlier.operating_system),
            location: self.location.or(earlier.location),
            latitude: self.latitude.or(earlier.latitude),
            longitude: self.longitude.or(earlier.longitude),
            fcm_token: self.fcm_token.or(earlier.fcm_token),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_code_parses_the_same_as_number_and_padded_text(digits in 4u32..=8, seed in any::<u64>()) {
            let n = seed % 10u64.pow(digits);
            let text = format!("{n:0width$}", width = digits as usize);
            let from_number = Code::parse("c", &CodeInput::Number(n), digits).unwrap();
            let from_text = Code::parse("c", &CodeInput::Text(text.clone()), digits).unwrap();
            prop_assert_eq!(from_number.as_str(), text.as_str());
            prop_assert_eq!(from_text, from_number);
        }

        #[test]
        fn text_with_anything_but_digits_is_refused(text in ".*[^0-9 ].*") {
            prop_assert!(Code::parse("c", &CodeInput::Text(text), 8).is_err());
        }

        #[test]
        fn emails_never_panic_and_come_out_lowercase(raw in ".{0,300}") {
            if let Ok(email) = Email::parse("email", &raw) {
                prop_assert_eq!(email.as_str(), email.as_str().to_lowercase());
                prop_assert!(email.as_str().contains('@'));
            }
        }
    }

    #[test]
    fn codes_are_zero_padded_from_numbers_and_strings() {
        assert_eq!(
            Code::parse("c", &CodeInput::Number(42), 4)
                .unwrap()
                .as_str(),
            "0042"
        );
        assert_eq!(
            Code::parse("c", &CodeInput::Text("0042".into()), 4)
                .unwrap()
                .as_str(),
            "0042"
        );
        assert_eq!(
            Code::parse("c", &CodeInput::Text("42".into()), 4)
                .unwrap()
                .as_str(),
            "0042"
        );
        assert!(Code::parse("c", &CodeInput::Number(10_000), 4).is_err());
        assert!(Code::parse("c", &CodeInput::Text("12a4".into()), 4).is_err());
        assert!(Code::parse("c", &CodeInput::Text("".into()), 4).is_err());
        assert!(Code::parse("c", &CodeInput::Text("00042".into()), 4).is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("email", " Alice@Example.COM ")
                .unwrap()
                .as_str(),
            "alice@example.com"
        );
        assert!(Email::parse("email", "not-an-email").is_err());
        assert!(Email::parse("email", "a@b@c").is_err());
    }

    #[test]
    fn usernames_exclude_at_signs() {
        assert_eq!(Username::parse("John_Doe").unwrap().as_str(), "john_doe");
        assert!(Username::parse("john@doe").is_err());
        assert!(Username::parse("jo").is_err());
    }
}
