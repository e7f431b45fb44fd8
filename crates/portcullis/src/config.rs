//! Configuration: built-in defaults, then an optional TOML file, then
//! `PORTCULLIS_*` environment variables, then command-line overrides.
//!
//! Every setting is one field of [`Config`]: its name is the TOML key, and the
//! variable is that name in upper case after `PORTCULLIS_` (`access_ttl` is
//! `PORTCULLIS_ACCESS_TTL`). [`Config::default`] holds the defaults; each
//! field's `deserialize_with` says how its text is read.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// The validated configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Address and port to listen on.
    #[serde(deserialize_with = "address")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` or `postgres://...`.
    #[serde(deserialize_with = "database_url")]
    pub database_url: String,
    #[serde(deserialize_with = "choice")]
    pub mode: Mode,
    /// Base64 of 32 bytes; when absent (development only) the key file is used.
    #[serde(deserialize_with = "secret")]
    pub master_key: Option<SecretString>,
    #[serde(deserialize_with = "path")]
    pub master_key_file: PathBuf,
    /// `iss` of tokens and base of links; `http://LISTEN` when not set.
    #[serde(deserialize_with = "url_base")]
    pub issuer: String,
    /// `aud` of tokens; the issuer when not set.
    #[serde(deserialize_with = "text")]
    pub audience: String,
    #[serde(deserialize_with = "choice")]
    pub mail_transport: MailTransport,
    /// Folder of the `file` transport.
    #[serde(deserialize_with = "path")]
    pub mail_dir: PathBuf,
    /// Required by the `smtp` transport; may hold a password.
    #[serde(deserialize_with = "smtp_url")]
    pub smtp_url: Option<SecretString>,
    /// Sender, e.g. `Portcullis <no-reply@localhost>`.
    #[serde(deserialize_with = "mailbox")]
    pub mail_from: String,
    /// Folder of templates that override the built-in ones.
    #[serde(deserialize_with = "optional_path")]
    pub template_dir: Option<PathBuf>,
    #[serde(deserialize_with = "choice")]
    pub login_verification: LoginVerification,
    /// The issuer authenticator apps show beside a TOTP account (no `:`).
    #[serde(deserialize_with = "totp_issuer")]
    pub totp_issuer: String,
    /// Enables `POST /v1/auth/dev-login` (SPEC §3.1).
    #[serde(deserialize_with = "boolean")]
    pub dev_login: bool,
    /// The second, explicit opt-in that production mode asks for dev-login.
    #[serde(deserialize_with = "boolean")]
    pub dev_login_in_production: bool,
    /// Dev-logins per API key, beside the login budgets they also spend.
    #[serde(deserialize_with = "budget")]
    pub dev_login_key_budget: Budget,
    /// How often the last-used times of API keys are written.
    #[serde(deserialize_with = "duration")]
    pub api_key_usage_flush: Duration,
    #[serde(deserialize_with = "duration")]
    pub access_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub refresh_ttl: Duration,
    /// Machine clients' token lifetimes (SPEC §5).
    #[serde(deserialize_with = "duration")]
    pub client_access_ttl: Duration,
    #[serde(deserialize_with = "duration")]
    pub client_refresh_ttl: Duration,
    /// Failed client logins per client, and per client IP.
    #[serde(deserialize_with = "budget")]
    pub client_login_budget: Budget,
    #[serde(deserialize_with = "budget")]
    pub client_ip_budget: Budget,
    #[serde(deserialize_with = "boolean")]
    pub refresh_rotation: bool,
    /// How long a rotated refresh token still gets the same answer.
    #[serde(deserialize_with = "duration")]
    pub refresh_grace: Duration,
    #[serde(deserialize_with = "duration")]
    pub code_ttl: Duration,
    /// Digits of register and login codes.
    #[serde(deserialize_with = "code_digits")]
    pub code_digits: u32,
    /// Digits of password-reset codes, which hand over the account.
    #[serde(deserialize_with = "code_digits")]
    pub reset_code_digits: u32,
    /// Wrong codes allowed per email key.
    #[serde(deserialize_with = "positive")]
    pub code_max_attempts: i64,
    #[serde(deserialize_with = "duration")]
    pub resend_cooldown: Duration,
    #[serde(deserialize_with = "positive")]
    pub resend_max: i64,
    #[serde(deserialize_with = "positive")]
    pub live_keys_per_account: i64,
    #[serde(deserialize_with = "password_min_length")]
    pub password_min_length: usize,
    /// Accounts never verified within this long are deleted, freeing their address.
    #[serde(deserialize_with = "duration")]
    pub unverified_ttl: Duration,
    /// Failed logins per account (SPEC §6).
    #[serde(deserialize_with = "budget")]
    pub login_account_budget: Budget,
    /// Failed logins per client IP.
    #[serde(deserialize_with = "budget")]
    pub login_ip_budget: Budget,
    /// Wrong emailed codes per address, across all its keys.
    #[serde(deserialize_with = "budget")]
    pub code_account_budget: Budget,
    /// Wrong emailed codes per client IP.
    #[serde(deserialize_with = "budget")]
    pub code_ip_budget: Budget,
    /// Consecutive wrong codes that lock an address's code flows for `code_lock`.
    #[serde(deserialize_with = "positive")]
    pub code_lock_after: i64,
    #[serde(deserialize_with = "duration")]
    pub code_lock: Duration,
    /// Requests that mail a code (register, forgot, resend) per address.
    #[serde(deserialize_with = "budget")]
    pub mail_address_budget: Budget,
    /// Requests that mail a code per client IP.
    #[serde(deserialize_with = "budget")]
    pub mail_ip_budget: Budget,
    /// Password hashes computed at once; the number of cores by default.
    #[serde(deserialize_with = "positive")]
    pub hash_concurrency: usize,
    /// Hashes that may wait; beyond that the server answers 503.
    #[serde(deserialize_with = "positive")]
    pub hash_queue: usize,
    /// Peers whose forwarding headers are believed.
    #[serde(deserialize_with = "cidr_list")]
    pub trusted_proxies: Vec<IpNet>,
    /// Log filter, e.g. `info` or `portcullis=debug`.
    #[serde(deserialize_with = "log_filter")]
    pub log: String,
    #[serde(deserialize_with = "choice")]
    pub log_format: LogFormat,
}

impl Default for Config {
    /// The built-in defaults (SPEC §9). An empty issuer or audience is derived
    /// when the configuration is built.
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://portcullis.db".into(),
            mode: Mode::Development,
            master_key: None,
            master_key_file: "portcullis.key".into(),
            issuer: String::new(),
            audience: String::new(),
            mail_transport: MailTransport::Console,
            mail_dir: "mail".into(),
            smtp_url: None,
            mail_from: "Portcullis <no-reply@localhost>".into(),
            template_dir: None,
            login_verification: LoginVerification::Always,
            totp_issuer: "Portcullis".into(),
            dev_login: false,
            dev_login_in_production: false,
            dev_login_key_budget: Budget::per(30, 60),
            api_key_usage_flush: Duration::from_secs(30),
            access_ttl: Duration::from_secs(24 * 3600),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            client_access_ttl: Duration::from_secs(3600),
            client_refresh_ttl: Duration::from_secs(7 * 86_400),
            client_login_budget: Budget::per(20, 60),
            client_ip_budget: Budget::per(60, 60),
            refresh_rotation: true,
            refresh_grace: Duration::from_secs(30),
            code_ttl: Duration::from_secs(5 * 60),
            code_digits: 4,
            reset_code_digits: 6,
            code_max_attempts: 5,
            resend_cooldown: Duration::from_secs(60),
            resend_max: 5,
            live_keys_per_account: 3,
            password_min_length: 8,
            unverified_ttl: Duration::from_secs(7 * 86_400),
            login_account_budget: Budget::per(5, 15 * 60),
            login_ip_budget: Budget::per(20, 60),
            code_account_budget: Budget::per(10, 15 * 60),
            code_ip_budget: Budget::per(20, 60),
            code_lock_after: 100,
            code_lock: Duration::from_secs(24 * 3600),
            mail_address_budget: Budget::per(10, 3600),
            mail_ip_budget: Budget::per(30, 3600),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            hash_queue: 64,
            trusted_proxies: Vec::new(),
            log: "info".into(),
            log_format: LogFormat::Text,
        }
    }
}

/// So many tries per window of so many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub tries: i64,
    pub window: i64,
}

impl Budget {
    const fn per(tries: i64, window: i64) -> Self {
        Budget { tries, window }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// When login step 1 asks for an emailed code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginVerification {
    Always,
    NewDevice,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailTransport {
    Console,
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// An enum setting's accepted names.
trait Choices: Copy + 'static {
    const CHOICES: &'static [(&'static str, Self)];
}

impl Choices for Mode {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("development", Mode::Development),
        ("production", Mode::Production),
    ];
}

impl Choices for LoginVerification {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("always", LoginVerification::Always),
        ("new_device", LoginVerification::NewDevice),
        ("never", LoginVerification::Never),
    ];
}

impl Choices for MailTransport {
    const CHOICES: &'static [(&'static str, Self)] = &[
        ("console", MailTransport::Console),
        ("file", MailTransport::File),
        ("smtp", MailTransport::Smtp),
    ];
}

impl Choices for LogFormat {
    const CHOICES: &'static [(&'static str, Self)] =
        &[("text", LogFormat::Text), ("json", LogFormat::Json)];
}

/// A configuration problem, worded for the operator. A password in a URL
/// never shows in it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn err(msg: impl AsRef<str>) -> ConfigError {
    ConfigError(redact(msg.as_ref()))
}

/// The raw settings, as text, keyed by their TOML name.
#[derive(Debug, Clone, Default)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// Reads the TOML file (if any), then the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut settings = Settings::default();
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("PORTCULLIS_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("cannot read config file {}: {e}", path.display())))?;
            settings
                .merge_toml(&text)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
        }
        // `std::env::vars` would panic on a variable that is not UTF-8, even one not ours.
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str().filter(|n| n.starts_with("PORTCULLIS_")) else {
                continue;
            };
            let value = value
                .into_string()
                .map_err(|_| err(format!("{name}: the value is not valid UTF-8")))?;
            vars.push((name.to_owned(), value));
        }
        settings.merge_env(vars);
        Ok(settings)
    }

    /// Merges a TOML document; unknown keys are an error so typos are caught.
    pub fn merge_toml(&mut self, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| err(format!("invalid TOML: {e}")))?;
        for (key, value) in table {
            if !is_known(&key) {
                return Err(err(format!("unknown setting `{key}`")));
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(err(format!(
                            "`{key}`: expected strings, found a {}",
                            other.type_str()
                        ))),
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                other => {
                    return Err(err(format!(
                        "`{key}`: unsupported {} value",
                        other.type_str()
                    )))
                }
            };
            self.0.insert(key, text);
        }
        Ok(())
    }

    /// Merges `PORTCULLIS_*` variables; other variables, and `PORTCULLIS_*`
    /// ones that name no setting (such as `PORTCULLIS_CONFIG`), are ignored.
    pub fn merge_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            if let Some(key) = name.strip_prefix("PORTCULLIS_") {
                let key = key.to_ascii_lowercase();
                if is_known(&key) {
                    self.0.insert(key, value);
                }
            }
        }
    }

    /// Sets one value (command-line overrides, tests).
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    /// A setting as given (file, environment or override); `None` when it is
    /// left to its default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Validates every setting, derives the issuer and audience, and applies
    /// the production refusals.
    pub fn build(&self) -> Result<Config, ConfigError> {
        if let Some(key) = self.0.keys().find(|key| !is_known(key)) {
            return Err(err(format!("unknown setting `{key}`")));
        }
        let text =
            de::value::MapDeserializer::<_, de::value::Error>::new(self.0.clone().into_iter());
        let mut config: Config = serde_path_to_error::deserialize(text).map_err(|e| {
            let key = e.path().to_string();
            let raw = self.get(&key).unwrap_or_default();
            err(format!(
                "PORTCULLIS_{} ({key}): invalid value `{raw}`: {}",
                key.to_ascii_uppercase(),
                e.inner()
            ))
        })?;
        if config.issuer.is_empty() {
            config.issuer = format!("http://{}", config.listen);
        }
        if config.audience.is_empty() {
            config.audience = config.issuer.clone();
        }
        config.check_mode()?;
        Ok(config)
    }
}

impl Config {
    /// The refusals of production mode (SPEC §2) and the settings that must go together.
    fn check_mode(&self) -> Result<(), ConfigError> {
        if self.mail_transport == MailTransport::Smtp && self.smtp_url.is_none() {
            return Err(err(
                "PORTCULLIS_MAIL_TRANSPORT is `smtp` but PORTCULLIS_SMTP_URL is not set",
            ));
        }
        if self.mode == Mode::Production {
            if self.mail_transport == MailTransport::Console {
                return Err(err(
                    "production mode refuses the console mail transport: set PORTCULLIS_MAIL_TRANSPORT to `smtp` or `file`",
                ));
            }
            if self.master_key.is_none() {
                return Err(err(
                    "production mode requires PORTCULLIS_MASTER_KEY (32 bytes, base64)",
                ));
            }
            if self.dev_login && !self.dev_login_in_production {
                return Err(err(
                    "production mode refuses PORTCULLIS_DEV_LOGIN without the explicit opt-in PORTCULLIS_DEV_LOGIN_IN_PRODUCTION=true",
                ));
            }
        }
        Ok(())
    }
}

/// The settings' names: the fields of [`Config`], as its serde derive lists them.
fn names() -> &'static [&'static str] {
    let mut names: &'static [&'static str] = &[];
    let _ = Config::deserialize(FieldNames(&mut names));
    names
}

fn is_known(key: &str) -> bool {
    names().contains(&key)
}

/// A deserializer that only notes which fields a struct asks for.
struct FieldNames<'a>(&'a mut &'static [&'static str]);

impl<'de> Deserializer<'de> for FieldNames<'_> {
    type Error = de::value::Error;

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("only the field names were asked for"))
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Reads a setting's text and parses it, trimmed; the error says what was expected.
fn parse<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    let text = String::deserialize(d)?;
    parse(text.trim()).map_err(de::Error::custom)
}

fn address<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    parse(d, |s| s.parse().map_err(|_| "expected address:port".into()))
}

fn database_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| {
        if s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://")
        {
            Ok(s.to_owned())
        } else {
            Err("expected sqlite://PATH or postgres://...".into())
        }
    })
}

fn choice<'de, D: Deserializer<'de>, T: Choices>(d: D) -> Result<T, D::Error> {
    parse(d, |s| {
        T::CHOICES
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, value)| *value)
            .ok_or_else(|| {
                let names: Vec<String> = T::CHOICES.iter().map(|(n, _)| format!("`{n}`")).collect();
                match names.split_last() {
                    Some((last, rest)) if !rest.is_empty() => {
                        format!("expected {} or {last}", rest.join(", "))
                    }
                    _ => format!("expected {}", names.concat()),
                }
            })
    })
}

/// Text, trimmed; empty means not set.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| Ok(s.to_owned()))
}

/// Authenticator apps read `issuer:account` in the otpauth URI's label.
fn totp_issuer<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| match s {
        "" => Err("expected a name".into()),
        s if s.contains(':') => Err("must not contain `:`".into()),
        s => Ok(s.to_owned()),
    })
}

/// A base URL: trailing slashes are dropped so links can be appended.
fn url_base<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| Ok(s.trim_end_matches('/').to_owned()))
}

fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    parse(d, |s| {
        Ok((!s.is_empty()).then(|| SecretString::from(s.to_owned())))
    })
}

fn smtp_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    parse(d, |s| {
        if s.is_empty() {
            return Ok(None);
        }
        if !s.starts_with("smtp://") && !s.starts_with("smtps://") {
            return Err("expected an smtp:// or smtps:// URL such as smtp://127.0.0.1:2525".into());
        }
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(s)
            .map(|_| Some(SecretString::from(s.to_owned())))
            .map_err(|e| format!("not a valid SMTP URL: {e}"))
    })
}

fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    parse(d, |s| match s {
        "" => Err("expected a path".into()),
        s => Ok(PathBuf::from(s)),
    })
}

fn optional_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    parse(d, |s| Ok((!s.is_empty()).then(|| PathBuf::from(s))))
}

fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| {
        s.parse::<lettre::message::Mailbox>()
            .map(|_| s.to_owned())
            .map_err(|e| e.to_string())
    })
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    parse(d, parse_duration)
}

fn boolean<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    parse(d, |s| match s {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    })
}

fn positive<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Default + PartialOrd,
{
    parse(d, |s| match s.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err("expected a positive whole number".into()),
    })
}

fn code_digits<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    parse(d, |s| match s.parse::<u32>() {
        Ok(n @ 4..=8) => Ok(n),
        _ => Err("expected a number from 4 to 8".into()),
    })
}

fn password_min_length<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    parse(d, |s| match s.parse::<usize>() {
        Ok(n @ 1..=256) => Ok(n),
        _ => Err("expected a number from 1 to 256".into()),
    })
}

/// Tries per window: `5/15m` is five per fifteen minutes.
fn budget<'de, D: Deserializer<'de>>(d: D) -> Result<Budget, D::Error> {
    parse(d, parse_budget)
}

fn parse_budget(s: &str) -> Result<Budget, String> {
    let expected = || "expected tries per window, such as 5/15m".to_owned();
    let (tries, window) = s.split_once('/').ok_or_else(expected)?;
    let tries = match tries.trim().parse::<i64>() {
        Ok(n) if n > 0 => n,
        _ => return Err(expected()),
    };
    let window = parse_duration(window.trim())?.as_secs() as i64;
    if window == 0 {
        return Err(expected());
    }
    Ok(Budget::per(tries, window))
}

/// Comma-separated CIDR ranges; empty is none.
fn cidr_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    parse(d, |s| {
        s.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .map_err(|_| format!("`{s}` is not a CIDR range"))
            })
            .collect()
    })
}

fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    parse(d, |s| {
        tracing_subscriber::EnvFilter::try_new(s)
            .map(|_| s.to_owned())
            .map_err(|e| format!("not a log filter such as `info` or `portcullis=debug`: {e}"))
    })
}

/// Parses `90s`, `15m`, `24h`, `30d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a duration such as 90s, 15m, 24h or 30d".to_owned())?;
    let secs = match unit {
        "" | "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    match secs {
        Some(secs) if secs <= 10 * 365 * 86_400 => Ok(Duration::from_secs(secs)),
        _ => Err("expected a duration such as 90s, 15m, 24h or 30d, at most ten years".into()),
    }
}

/// Masks passwords in text that may quote a setting: the password of any
/// `scheme://user:password@host` and the value of any `password=`.
fn redact(text: &str) -> String {
    // A value ends where the message's own punctuation or white space begins.
    let ends = |c: char| c.is_whitespace() || matches!(c, '`' | '"' | '\'');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, marker)) = ["://", "password="]
        .iter()
        .filter_map(|m| rest.to_ascii_lowercase().find(m).map(|at| (at, *m)))
        .min()
    {
        let start = at + marker.len();
        out.push_str(&rest[..start]);
        let value_len = rest[start..].find(ends).unwrap_or(rest.len() - start);
        let value = &rest[start..start + value_len];
        if marker == "://" {
            // user:password@host; the last `@` ends the user part, as a typo may leave `@` unescaped.
            match value
                .rfind('@')
                .and_then(|at| Some((value[..at].find(':')?, at)))
            {
                Some((colon, at)) => {
                    out.push_str(&value[..=colon]);
                    out.push_str("***");
                    out.push_str(&value[at..]);
                }
                None => out.push_str(value),
            }
        } else {
            let len = value.find('&').unwrap_or(value.len());
            out.push_str("***");
            out.push_str(&value[len..]);
        }
        rest = &rest[start + value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn durations_round_trip(n in 0u64..100_000, unit in prop::sample::select(vec![("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400)])) {
            let parsed = parse_duration(&format!("{n}{}", unit.0));
            let secs = n * unit.1;
            if secs <= 10 * 365 * 86_400 {
                prop_assert_eq!(parsed, Ok(Duration::from_secs(secs)));
            } else {
                prop_assert!(parsed.is_err());
            }
        }

        #[test]
        fn durations_never_panic(text in ".{0,40}") {
            let _ = parse_duration(&text);
        }

        #[test]
        fn redaction_never_panics_and_hides_url_passwords(text in ".{0,60}", password in "[a-z0-9]{8,20}") {
            let _ = redact(&text);
            let url = format!("{text} postgres://user:{password}@db/x");
            let leaked = format!("{password}@db/x");
            prop_assert!(!redact(&url).ends_with(&leaked));
        }
    }

    fn build_error(settings: &[(&str, &str)]) -> String {
        let mut s = Settings::default();
        for (key, value) in settings {
            s.set(key, *value);
        }
        s.build().unwrap_err().to_string()
    }

    #[test]
    fn defaults_build_a_development_config() {
        let config = Settings::default().build().unwrap();
        assert_eq!(config.mode, Mode::Development);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite://portcullis.db");
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert_eq!(config.audience, "http://127.0.0.1:8080");
        assert_eq!(config.access_ttl, Duration::from_secs(86_400));
        assert_eq!(config.refresh_ttl, Duration::from_secs(30 * 86_400));
        assert_eq!(config.code_digits, 4);
        assert_eq!(config.mail_transport, MailTransport::Console);
        assert_eq!(config.mail_from, "Portcullis <no-reply@localhost>");
        assert!(config.refresh_rotation);
        assert!(config.trusted_proxies.is_empty());
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(config.hash_concurrency, cores);
    }

    #[test]
    fn issuer_follows_listen_and_audience_follows_issuer() {
        let mut settings = Settings::default();
        settings.set("listen", "0.0.0.0:9000");
        let config = settings.build().unwrap();
        assert_eq!(config.issuer, "http://0.0.0.0:9000");
        assert_eq!(config.audience, config.issuer);

        settings.set("issuer", " https://auth.example.com/ ");
        let config = settings.build().unwrap();
        assert_eq!(config.issuer, "https://auth.example.com");
        assert_eq!(config.audience, "https://auth.example.com");

        settings.set("audience", "api");
        assert_eq!(settings.build().unwrap().audience, "api");
    }

    #[test]
    fn budgets_parse_as_tries_per_window() {
        assert_eq!(parse_budget("5/15m"), Ok(Budget::per(5, 900)));
        assert!(parse_budget("5").is_err());
        assert!(parse_budget("0/1m").is_err());
        assert!(parse_budget("5/0s").is_err());
        let mut settings = Settings::default();
        settings.set("login_ip_budget", "20 per minute");
        let msg = settings.build().unwrap_err().to_string();
        assert!(msg.contains("PORTCULLIS_LOGIN_IP_BUDGET"), "{msg}");
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
        assert!(parse_duration("5 minutes").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn production_refuses_console_mail_and_missing_master_key() {
        let mut settings = Settings::default();
        settings.set("mode", "production");
        assert!(settings
            .build()
            .unwrap_err()
            .to_string()
            .contains("console"));
        settings.set("mail_transport", "file");
        assert!(settings
            .build()
            .unwrap_err()
            .to_string()
            .contains("MASTER_KEY"));
        settings.set("master_key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        assert!(settings.build().is_ok());
        settings.set("dev_login", "true");
        assert!(settings
            .build()
            .unwrap_err()
            .to_string()
            .contains("PORTCULLIS_DEV_LOGIN_IN_PRODUCTION"));
        settings.set("dev_login_in_production", "true");
        assert!(settings.build().is_ok());
    }

    #[test]
    fn the_totp_issuer_has_no_colon() {
        let mut settings = Settings::default();
        settings.set("totp_issuer", "Acme: staging");
        assert!(settings.build().unwrap_err().to_string().contains("`:`"));
    }

    #[test]
    fn smtp_transport_needs_a_url() {
        let msg = build_error(&[("mail_transport", "smtp")]);
        assert!(msg.contains("PORTCULLIS_SMTP_URL is not set"), "{msg}");
        let mut settings = Settings::default();
        settings
            .set("mail_transport", "smtp")
            .set("smtp_url", "smtps://user:pass@mail.example.com");
        assert!(settings.build().is_ok());
    }

    #[test]
    fn toml_rejects_unknown_keys_and_env_overrides_file() {
        let mut settings = Settings::default();
        let msg = settings
            .merge_toml("acess_ttl = \"1h\"")
            .unwrap_err()
            .to_string();
        assert_eq!(msg, "unknown setting `acess_ttl`");
        settings
            .merge_toml("access_ttl = \"1h\"\ncode_digits = 6\nrefresh_rotation = false\ntrusted_proxies = [\"10.0.0.0/8\", \"::1/128\"]")
            .unwrap();
        settings.merge_env([("PORTCULLIS_ACCESS_TTL".to_owned(), "2h".to_owned())]);
        settings.set("code_digits", "7");
        let config = settings.build().unwrap();
        assert_eq!(config.access_ttl, Duration::from_secs(7200));
        assert_eq!(config.code_digits, 7);
        assert!(!config.refresh_rotation);
        assert_eq!(config.trusted_proxies.len(), 2);
        for unsupported in [
            "access_ttl = 1.5",
            "trusted_proxies = [1]",
            "log = { a = 1 }",
        ] {
            assert!(
                Settings::default().merge_toml(unsupported).is_err(),
                "{unsupported}"
            );
        }
    }

    #[test]
    fn unknown_variables_are_ignored_and_unknown_overrides_refused() {
        let mut settings = Settings::default();
        settings.merge_env([
            ("PORTCULLIS_CONFIG".to_owned(), "portcullis.toml".to_owned()),
            (
                "PORTCULLIS_TEST_POSTGRES".to_owned(),
                "postgres://x".to_owned(),
            ),
            ("PORTCULLIS_NO_SUCH_THING".to_owned(), "1".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
            ("PORTCULLIS_log".to_owned(), "debug".to_owned()),
        ]);
        assert_eq!(settings.get("config"), None);
        assert_eq!(settings.build().unwrap().log, "debug");
        settings.set("acess_ttl", "1h");
        assert_eq!(
            settings.build().unwrap_err().to_string(),
            "unknown setting `acess_ttl`"
        );
    }

    #[test]
    fn every_field_is_a_setting() {
        let names = names();
        assert_eq!(names.first(), Some(&"listen"), "{names:?}");
        assert_eq!(names.last(), Some(&"log_format"), "{names:?}");
        for name in ["smtp_url", "mail_from", "hash_concurrency"] {
            assert!(is_known(name), "{name}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert_eq!(
            build_error(&[("access_ttl", "1x")]),
            "PORTCULLIS_ACCESS_TTL (access_ttl): invalid value `1x`: expected a duration such as 90s, 15m, 24h or 30d, at most ten years"
        );
        assert_eq!(
            build_error(&[("mail_transport", "pigeon")]),
            "PORTCULLIS_MAIL_TRANSPORT (mail_transport): invalid value `pigeon`: expected `console`, `file` or `smtp`"
        );
        assert_eq!(
            build_error(&[("mode", " prod ")]),
            "PORTCULLIS_MODE (mode): invalid value ` prod `: expected `development` or `production`"
        );
        let cases = [
            ("listen", "8080"),
            ("database_url", "mysql://db"),
            ("login_verification", "sometimes"),
            ("refresh_rotation", "maybe"),
            ("refresh_grace", "-1s"),
            ("code_digits", "3"),
            ("code_digits", "9"),
            ("code_max_attempts", "0"),
            ("resend_max", "-2"),
            ("live_keys_per_account", "x"),
            ("hash_concurrency", "0"),
            ("hash_queue", "1.5"),
            ("password_min_length", "257"),
            ("trusted_proxies", "10.0.0.0/8, example.com"),
            ("log", "portcullis=loud"),
            ("log_format", "xml"),
            ("mail_from", "not an address"),
            ("mail_dir", " "),
            ("smtp_url", "mail.example.com"),
            ("smtp_url", "smtp://"),
        ];
        for (key, value) in cases {
            let msg = build_error(&[(key, value)]);
            let prefix = format!(
                "PORTCULLIS_{} ({key}): invalid value `{value}`: ",
                key.to_ascii_uppercase()
            );
            assert!(msg.starts_with(&prefix), "{key}={value}: {msg}");
        }
    }

    #[test]
    fn errors_never_show_a_password_from_a_url() {
        let msg = build_error(&[(
            "database_url",
            "postgress://app:s3cret@db.internal:5432/auth",
        )]);
        assert_eq!(
            msg,
            "PORTCULLIS_DATABASE_URL (database_url): invalid value `postgress://app:***@db.internal:5432/auth`: expected sqlite://PATH or postgres://..."
        );
        let msg = build_error(&[("smtp_url", "smtpx://mailer:hunter2@mail.example.com:587")]);
        assert!(
            msg.contains("`smtpx://mailer:***@mail.example.com:587`"),
            "{msg}"
        );
        assert!(!msg.contains("hunter2"), "{msg}");
        // A password holding an unescaped `@` or `/`, and the key=value form.
        let msg = build_error(&[("database_url", "postgress://app:p@ss/w0rd@db/auth")]);
        assert!(!msg.contains("ss/w0rd"), "{msg}");
        let msg = build_error(&[("database_url", "host=db password=s3cret&x=1")]);
        assert!(msg.contains("password=***&x=1"), "{msg}");
        // A TOML syntax error quotes the line.
        let msg = Settings::default()
            .merge_toml("database_url = \"postgres://app:s3cret@db/auth")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("s3cret"), "{msg}");
        assert_eq!(redact("sqlite://portcullis.db"), "sqlite://portcullis.db");
    }
}
