//! The second factor, as login, dev-login and the 2FA settings share it:
//! TOTP codes (RFC 6238: SHA-1, 6 digits, 30 s steps, one step of skew,
//! each step accepted once) and single-use recovery codes.

use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Algorithm, TOTP};

use crate::audit::{Event, Kind};
use crate::clock::Timestamp;
use crate::crypto::ct_eq;
use crate::error::ApiError;
use crate::services::{Services, Work};
use crate::store::totp as store;
use crate::store::users::User;

const DIGITS: usize = 6;
const STEP: i64 = 30;
/// Steps either side of now whose codes are still accepted (clock drift, typing time).
const SKEW: i64 = 1;
/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes given when TOTP is enabled.
pub(super) const RECOVERY_CODES: usize = 10;

/// An authenticator's view of one account: its secret, issuer and name.
pub(super) struct Authenticator(TOTP);

impl Authenticator {
    fn new(secret: Vec<u8>, issuer: &str, account: &str) -> Self {
        // Unchecked: the secret's length and the parameters are ours, and the
        // label is percent-encoded in the URI whatever it holds.
        Self(TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW as u8,
            STEP as u64,
            secret,
            Some(issuer.to_owned()),
            account.to_owned(),
        ))
    }

    /// A new random secret for `user`.
    pub fn generate(s: &Services, user: &User) -> Self {
        let secret = s.secrets.random::<SECRET_BYTES>().to_vec();
        Self::new(secret, &s.config.totp_issuer, &user.email)
    }

    /// Opens a secret stored for `user`.
    pub fn open(s: &Services, user: &User, encrypted: &str) -> Result<Self, ApiError> {
        let secret = s
            .secrets
            .decrypt(encrypted, &context(&user.id))
            .ok_or_else(|| anyhow::anyhow!("the TOTP secret of {} does not decrypt", user.id))?;
        Ok(Self::new(secret, &s.config.totp_issuer, &user.email))
    }

    /// The secret, encrypted for storage on `user`'s row.
    pub fn seal(&self, s: &Services, user: &User) -> String {
        s.secrets.encrypt(&self.0.secret, &context(&user.id))
    }

    /// The code of time step `step`.
    pub fn code(&self, step: i64) -> String {
        self.0.generate((step * STEP) as u64)
    }

    /// The step within the skew of `now` whose code is `code`. Every step is
    /// compared, in constant time, whatever matches.
    pub fn matching_step(&self, code: &str, now: Timestamp) -> Option<i64> {
        let current = now.div_euclid(STEP);
        (current - SKEW..=current + SKEW).fold(None, |found, step| {
            let matches = ct_eq(&self.code(step), code);
            found.or(matches.then_some(step))
        })
    }

    pub fn secret_base32(&self) -> String {
        self.0.get_secret_base32()
    }

    /// The `otpauth://totp/…` URI authenticator apps import.
    pub fn uri(&self) -> String {
        self.0.get_url()
    }
}

/// What a stored TOTP secret is bound to: its account.
fn context(user_id: &str) -> String {
    format!("totp:{user_id}")
}

/// Checks a second-factor code for `user`, whose TOTP is enabled, and spends
/// it inside `work`, whose first statement this is (a write, as every unit of
/// work starts): a TOTP code of the current step (± the skew), each step
/// accepted once, or else an unused recovery code. `false` for anything else.
pub(super) async fn check(
    s: &Services,
    work: &mut Work<'_>,
    user: &User,
    code: &str,
    now: Timestamp,
) -> Result<bool, ApiError> {
    let code = code.trim();
    if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        let Some(secret) = &user.totp_secret else {
            return Ok(false);
        };
        let authenticator = Authenticator::open(s, user, secret)?;
        return Ok(match authenticator.matching_step(code, now) {
            Some(step) => store::accept_step(work, &user.id, step).await?,
            None => false,
        });
    }
    let hash = recovery_hash(s, &user.id, code);
    if !store::spend_recovery_code(work, &user.id, &hash, now).await? {
        return Ok(false);
    }
    let event = Event::new(Kind::RecoveryCodeUsed).user(&user.id);
    work.audit(event, now);
    Ok(true)
}

/// The second-factor step of a login.
pub(super) enum Factor {
    /// TOTP is off, or the code was good (and is now spent).
    Passed,
    /// TOTP is on and no code was sent: the client asks for one.
    Missing,
    Wrong,
}

/// The second-factor step of a login for `user`, inside `work`.
pub(super) async fn second_factor(
    s: &Services,
    work: &mut Work<'_>,
    user: &User,
    code: Option<&SecretString>,
    now: Timestamp,
) -> Result<Factor, ApiError> {
    if !user.totp_enabled {
        return Ok(Factor::Passed);
    }
    let Some(code) = code else {
        return Ok(Factor::Missing);
    };
    Ok(
        match check(s, work, user, code.expose_secret(), now).await? {
            true => Factor::Passed,
            false => Factor::Wrong,
        },
    )
}

/// Fresh recovery codes for `user`, as shown once (`xxxx-xxxx-xxxx`, 60
/// random bits each) and as stored.
pub(super) fn new_recovery_codes(s: &Services, user_id: &str) -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = s.secrets.random::<12>();
            let chars: String = bytes
                .iter()
                .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
                .collect();
            format!("{}-{}-{}", &chars[..4], &chars[4..8], &chars[8..])
        })
        .collect();
    let hashes = codes.iter().map(|c| recovery_hash(s, user_id, c)).collect();
    (codes, hashes)
}

/// A recovery code's stored form: case, spaces and dashes do not matter.
fn recovery_hash(s: &Services, user_id: &str, code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    s.secrets
        .secret_hash("recovery_code", &format!("{user_id}:{normalized}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1: the seed is the ASCII `12345678901234567890`;
    /// six digits are the last six of the eight the RFC lists.
    #[test]
    fn rfc_6238_appendix_b_vectors() {
        let totp = Authenticator::new(b"12345678901234567890".to_vec(), "Test", "a@example.com");
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (time, eight) in vectors {
            assert_eq!(totp.code(time / STEP), eight[2..], "T = {time}");
        }
    }

    #[test]
    fn codes_one_step_either_side_match_and_two_do_not() {
        let totp = Authenticator::new(b"12345678901234567890".to_vec(), "Test", "a@example.com");
        let now = 1_700_000_015;
        let current = now / STEP;
        for offset in -1..=1 {
            let code = totp.code(current + offset);
            assert_eq!(totp.matching_step(&code, now), Some(current + offset));
        }
        // The secret and time are fixed: these codes differ from the three near ones.
        for offset in [-2, 2] {
            let code = totp.code(current + offset);
            assert_eq!(totp.matching_step(&code, now), None);
        }
    }

    #[test]
    fn the_uri_names_issuer_and_account() {
        let totp = Authenticator::new(b"12345678901234567890".to_vec(), "Acme Co", "a@example.com");
        assert_eq!(
            totp.uri(),
            "otpauth://totp/Acme%20Co:a%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20Co"
        );
    }
}
