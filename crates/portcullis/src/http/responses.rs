//! The API's response bodies, built from what the flows return.

use portcullis_proto::{
    DataTokens, DataUser, DeviceBody, MessageResponse, SecondFactorResponse, SessionBody,
    SessionData, StepOneResponse, TokenResponse, UserBody,
};

use crate::auth::{Grant, StepOne};
use crate::clock::rfc3339;
use crate::domain::{Device, Label};
use crate::store::sessions::Session;
use crate::store::users::User;

pub fn step_one(step: StepOne, message: &str) -> StepOneResponse {
    StepOneResponse {
        success: true,
        message: message.to_owned(),
        email_key: step.email_key,
        email: step.email,
        is_register: step.is_register,
        requires_verification: true,
        next_step: "email_verification".into(),
    }
}

pub fn user(u: User) -> UserBody {
    UserBody {
        verified: u.verified,
        totp_enabled: u.totp_enabled,
        created_at: rfc3339(u.created_at),
        id: u.id,
        email: u.email,
        username: u.username,
        name: u.name,
    }
}

/// The token body, with `token` and `refreshToken` repeating the two tokens
/// under the names the documented client reads, and `data` the session in
/// the shape of the login-with-TOTP document.
pub fn tokens(g: Grant) -> TokenResponse {
    let data = SessionData {
        user: DataUser {
            id: g.user.id.clone(),
            uuid: g.user.id.clone(),
            username: g.user.username.clone(),
            email: g.user.email.clone(),
            role: "USER".into(),
            active: !g.user.disabled,
        },
        tokens: DataTokens {
            access_token: g.access_token.clone(),
            refresh_token: g.refresh_token.clone(),
            access_token_expires_at: rfc3339(g.issued_at + g.expires_in),
            refresh_token_expires_at: rfc3339(g.issued_at + g.refresh_expires_in),
            token_type: "Bearer".into(),
        },
        subscription: None,
        requires_2fa: false,
    };
    TokenResponse {
        success: true,
        token: g.access_token.clone(),
        refresh_token_alias: g.refresh_token.clone(),
        access_token: g.access_token,
        refresh_token: g.refresh_token,
        token_type: "bearer".into(),
        expires_in: g.expires_in,
        refresh_expires_in: g.refresh_expires_in,
        device_id: g.device_id,
        user: user(g.user),
        requires_2fa: false,
        data,
    }
}

/// Login step 1 when the account's TOTP code is still needed.
pub fn second_factor() -> SecondFactorResponse {
    SecondFactorResponse {
        success: true,
        requires_2fa: true,
        next_step: "totp".into(),
    }
}

pub fn message(text: impl Into<String>) -> MessageResponse {
    MessageResponse {
        success: true,
        message: text.into(),
    }
}

pub fn session(s: Session, current_session: &str) -> SessionBody {
    SessionBody {
        current: s.id == current_session,
        created_at: rfc3339(s.created_at),
        last_seen_at: rfc3339(s.last_seen_at),
        expires_at: rfc3339(s.expires_at),
        device: device(s.device),
        ip: s.ip,
        user_agent: s.user_agent,
    }
}

fn device(d: Device) -> DeviceBody {
    DeviceBody {
        device_id: d.id.map(Label::into_string).unwrap_or_default(),
        device_name: d.name.map(Label::into_string),
        platform: d.platform.map(|p| p.as_str().to_owned()),
        operating_system: d.operating_system.map(Label::into_string),
        location: d.location.map(Label::into_string),
        latitude: d.latitude,
        longitude: d.longitude,
    }
}
