//! Validated values from outside: parse at the edge, then trust the type.

use std::fmt;

use portcullis_proto::CodeInput;

use crate::error::ApiError;
use crate::store::sessions::Device;

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

const PLATFORMS: &[&str] = &[
    "web", "mobile", "desktop", "tablet", "ios", "android", "windows", "macos", "linux", "unknown",
];

/// Checks the device fields a client sent.
pub fn check_device(device: &Device) -> Result<(), ApiError> {
    let texts = [
        ("device_id", &device.device_id, 128),
        ("device_name", &device.device_name, 200),
        ("operating_system", &device.operating_system, 200),
        ("location", &device.location, 200),
        ("fcm_token", &device.fcm_token, 4096),
    ];
    for (field, value, max) in texts {
        if let Some(value) = value {
            if value.trim().is_empty() || value.chars().count() > max {
                return Err(ApiError::field(
                    field,
                    format!("Must be 1 to {max} characters"),
                ));
            }
        }
    }
    if let Some(platform) = &device.platform {
        if !PLATFORMS.contains(&platform.as_str()) {
            return Err(ApiError::field(
                "platform",
                format!("Must be one of: {}", PLATFORMS.join(", ")),
            ));
        }
    }
    if device
        .latitude
        .is_some_and(|v| !(-90.0..=90.0).contains(&v))
    {
        return Err(ApiError::field("latitude", "Must be between -90 and 90"));
    }
    if device
        .longitude
        .is_some_and(|v| !(-180.0..=180.0).contains(&v))
    {
        return Err(ApiError::field("longitude", "Must be between -180 and 180"));
    }
    Ok(())
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
