//! Configuration: built-in defaults, then an optional TOML file, then
//! `PORTCULLIS_*` environment variables, then command-line overrides.
//!
//! Every setting has one name; the TOML key is the variable name without the
//! `PORTCULLIS_` prefix, in lower case (`PORTCULLIS_ACCESS_TTL` is `access_ttl`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;

/// Every key the configuration understands, with its default (`None`: no default).
const KEYS: &[(&str, Option<&str>)] = &[
    ("listen", Some("127.0.0.1:8080")),
    ("database_url", Some("sqlite://portcullis.db")),
    ("mode", Some("development")),
    ("master_key", None),
    ("master_key_file", Some("portcullis.key")),
    ("issuer", None),
    ("audience", None),
    ("mail_transport", Some("console")),
    ("mail_dir", Some("mail")),
    ("smtp_url", None),
    ("mail_from", Some("Portcullis <no-reply@localhost>")),
    ("template_dir", None),
    ("login_verification", Some("always")),
    ("access_ttl", Some("24h")),
    ("refresh_ttl", Some("30d")),
    ("refresh_rotation", Some("true")),
    ("refresh_grace", Some("30s")),
    ("code_ttl", Some("5m")),
    ("code_digits", Some("4")),
    ("reset_code_digits", Some("6")),
    ("code_max_attempts", Some("5")),
    ("resend_cooldown", Some("60s")),
    ("resend_max", Some("5")),
    ("live_keys_per_account", Some("3")),
    ("password_min_length", Some("8")),
    ("login_account_budget", Some("5/15m")),
    ("login_ip_budget", Some("20/1m")),
    ("code_account_budget", Some("10/15m")),
    ("code_ip_budget", Some("20/1m")),
    ("code_lock_after", Some("100")),
    ("code_lock", Some("24h")),
    ("mail_address_budget", Some("10/1h")),
    ("mail_ip_budget", Some("30/1h")),
    ("hash_concurrency", None),
    ("hash_queue", Some("64")),
    ("trusted_proxies", Some("")),
    ("log", Some("info")),
    ("log_format", Some("text")),
];

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

#[derive(Debug, Clone)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub dir: PathBuf,
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub template_dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub mode: Mode,
    /// Base64 of 32 bytes; when absent in development a key file is used.
    pub master_key: Option<SecretString>,
    pub master_key_file: PathBuf,
    pub issuer: String,
    pub audience: String,
    pub mail: MailConfig,
    pub login_verification: LoginVerification,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    pub refresh_rotation: bool,
    pub refresh_grace: Duration,
    pub code_ttl: Duration,
    pub code_digits: u32,
    /// Digits of password-reset codes, which hand over the account.
    pub reset_code_digits: u32,
    pub code_max_attempts: i64,
    pub resend_cooldown: Duration,
    pub resend_max: i64,
    pub live_keys_per_account: i64,
    pub password_min_length: usize,
    /// Failed logins per account (SPEC §6).
    pub login_account_budget: Budget,
    /// Failed logins per client IP.
    pub login_ip_budget: Budget,
    /// Wrong emailed codes per address, across all its keys.
    pub code_account_budget: Budget,
    /// Wrong emailed codes per client IP.
    pub code_ip_budget: Budget,
    /// Consecutive wrong codes that lock an address's code flows for `code_lock`.
    pub code_lock_after: i64,
    pub code_lock: Duration,
    /// Requests that mail a code (register, forgot, resend) per address.
    pub mail_address_budget: Budget,
    /// Requests that mail a code per client IP.
    pub mail_ip_budget: Budget,
    pub hash_concurrency: usize,
    pub hash_queue: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub log: String,
    pub log_format: LogFormat,
}

/// A configuration problem, worded for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
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
        settings.merge_env(std::env::vars());
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

    /// Merges `PORTCULLIS_*` variables; other variables are ignored.
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

    /// A setting as text: the value given, else its default.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .or_else(|| KEYS.iter().find(|(k, _)| *k == key).and_then(|(_, d)| *d))
    }

    fn parse<T>(
        &self,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(key).unwrap_or_default();
        parse(raw.trim()).map_err(|why| {
            err(format!(
                "PORTCULLIS_{} ({key}): invalid value `{raw}`: {why}",
                key.to_ascii_uppercase()
            ))
        })
    }

    /// Validates every setting and applies the production refusals.
    pub fn build(&self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self.parse("listen", |s| {
            s.parse().map_err(|_| "expected address:port".into())
        })?;
        let mode = self.parse("mode", |s| match s {
            "development" => Ok(Mode::Development),
            "production" => Ok(Mode::Production),
            _ => Err("expected `development` or `production`".into()),
        })?;
        let issuer = match self.get("issuer") {
            Some(s) if !s.trim().is_empty() => s.trim().trim_end_matches('/').to_owned(),
            _ => format!("http://{listen}"),
        };
        let audience = self
            .get("audience")
            .map(str::to_owned)
            .unwrap_or_else(|| issuer.clone());
        let mail = MailConfig {
            transport: self.parse("mail_transport", |s| match s {
                "console" => Ok(MailTransport::Console),
                "file" => Ok(MailTransport::File),
                "smtp" => Ok(MailTransport::Smtp),
                _ => Err("expected `console`, `file` or `smtp`".into()),
            })?,
            dir: PathBuf::from(self.get("mail_dir").unwrap_or("mail")),
            smtp_url: self
                .get("smtp_url")
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_owned())),
            from: self.parse("mail_from", |s| {
                s.parse::<lettre::message::Mailbox>()
                    .map(|_| s.to_owned())
                    .map_err(|e| e.to_string())
            })?,
            template_dir: self
                .get("template_dir")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        };
        let database_url = self.parse("database_url", |s| {
            if s.starts_with("sqlite:")
                || s.starts_with("postgres://")
                || s.starts_with("postgresql://")
            {
                Ok(s.to_owned())
            } else {
                Err("expected sqlite://PATH or postgres://...".into())
            }
        })?;
        let digits = |s: &str| match s.parse::<u32>() {
            Ok(n @ 4..=8) => Ok(n),
            _ => Err("expected a number from 4 to 8".to_owned()),
        };
        let code_digits = self.parse("code_digits", digits)?;
        let config = Config {
            listen,
            database_url,
            mode,
            master_key: self
                .get("master_key")
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_owned())),
            master_key_file: PathBuf::from(self.get("master_key_file").unwrap_or("portcullis.key")),
            issuer,
            audience,
            mail,
            login_verification: self.parse("login_verification", |s| match s {
                "always" => Ok(LoginVerification::Always),
                "new_device" => Ok(LoginVerification::NewDevice),
                "never" => Ok(LoginVerification::Never),
                _ => Err("expected `always`, `new_device` or `never`".into()),
            })?,
            access_ttl: self.parse("access_ttl", parse_duration)?,
            refresh_ttl: self.parse("refresh_ttl", parse_duration)?,
            refresh_rotation: self.parse("refresh_rotation", parse_bool)?,
            refresh_grace: self.parse("refresh_grace", parse_duration)?,
            code_ttl: self.parse("code_ttl", parse_duration)?,
            code_digits,
            reset_code_digits: self.parse("reset_code_digits", digits)?,
            code_max_attempts: self.parse("code_max_attempts", parse_positive)?,
            resend_cooldown: self.parse("resend_cooldown", parse_duration)?,
            resend_max: self.parse("resend_max", parse_positive)?,
            live_keys_per_account: self.parse("live_keys_per_account", parse_positive)?,
            password_min_length: self.parse("password_min_length", |s| {
                match s.parse::<usize>() {
                    Ok(n @ 1..=256) => Ok(n),
                    _ => Err("expected a number from 1 to 256".into()),
                }
            })?,
            login_account_budget: self.parse("login_account_budget", parse_budget)?,
            login_ip_budget: self.parse("login_ip_budget", parse_budget)?,
            code_account_budget: self.parse("code_account_budget", parse_budget)?,
            code_ip_budget: self.parse("code_ip_budget", parse_budget)?,
            code_lock_after: self.parse("code_lock_after", parse_positive)?,
            code_lock: self.parse("code_lock", parse_duration)?,
            mail_address_budget: self.parse("mail_address_budget", parse_budget)?,
            mail_ip_budget: self.parse("mail_ip_budget", parse_budget)?,
            hash_concurrency: match self.get("hash_concurrency") {
                Some(_) => self.parse("hash_concurrency", |s| {
                    parse_positive(s).map(|n| n as usize)
                })?,
                None => std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            },
            hash_queue: self.parse("hash_queue", |s| parse_positive(s).map(|n| n as usize))?,
            trusted_proxies: self.parse("trusted_proxies", |s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<IpNet>()
                            .map_err(|_| format!("`{s}` is not a CIDR range"))
                    })
                    .collect()
            })?,
            log: self.parse("log", |s| {
                tracing_subscriber::EnvFilter::try_new(s)
                    .map(|_| s.to_owned())
                    .map_err(|e| {
                        format!("not a log filter such as `info` or `portcullis=debug`: {e}")
                    })
            })?,
            log_format: self.parse("log_format", |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("expected `text` or `json`".into()),
            })?,
        };
        config.check_mode()?;
        Ok(config)
    }
}

impl Config {
    /// The refusals of production mode (SPEC §2) and the settings that must go together.
    fn check_mode(&self) -> Result<(), ConfigError> {
        if self.mail.transport == MailTransport::Smtp && self.mail.smtp_url.is_none() {
            return Err(err(
                "PORTCULLIS_MAIL_TRANSPORT is `smtp` but PORTCULLIS_SMTP_URL is not set",
            ));
        }
        if self.mode == Mode::Production {
            if self.mail.transport == MailTransport::Console {
                return Err(err(
                    "production mode refuses the console mail transport: set PORTCULLIS_MAIL_TRANSPORT to `smtp` or `file`",
                ));
            }
            if self.master_key.is_none() {
                return Err(err(
                    "production mode requires PORTCULLIS_MASTER_KEY (32 bytes, base64)",
                ));
            }
        }
        Ok(())
    }
}

fn is_known(key: &str) -> bool {
    KEYS.iter().any(|(k, _)| *k == key)
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

/// So many tries per window of so many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub tries: i64,
    pub window: i64,
}

/// Parses `5/15m`: five tries per fifteen minutes.
fn parse_budget(s: &str) -> Result<Budget, String> {
    let expected = || "expected tries per window, such as 5/15m".to_owned();
    let (tries, window) = s.split_once('/').ok_or_else(expected)?;
    let tries = parse_positive(tries.trim()).map_err(|_| expected())?;
    let window = parse_duration(window.trim())?.as_secs() as i64;
    if window == 0 {
        return Err(expected());
    }
    Ok(Budget { tries, window })
}

fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

fn parse_positive(s: &str) -> Result<i64, String> {
    match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive whole number".into()),
    }
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
    }

    #[test]
    fn defaults_build_a_development_config() {
        let config = Settings::default().build().unwrap();
        assert_eq!(config.mode, Mode::Development);
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert_eq!(config.access_ttl, Duration::from_secs(86_400));
        assert_eq!(config.code_digits, 4);
    }

    #[test]
    fn budgets_parse_as_tries_per_window() {
        assert_eq!(
            parse_budget("5/15m"),
            Ok(Budget {
                tries: 5,
                window: 900
            })
        );
        assert!(parse_budget("5").is_err());
        assert!(parse_budget("0/1m").is_err());
        assert!(parse_budget("5/0s").is_err());
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
    }

    #[test]
    fn toml_rejects_unknown_keys_and_env_overrides_file() {
        let mut settings = Settings::default();
        assert!(settings.merge_toml("acess_ttl = \"1h\"").is_err());
        settings
            .merge_toml("access_ttl = \"1h\"\ncode_digits = 6")
            .unwrap();
        settings.merge_env([("PORTCULLIS_ACCESS_TTL".to_owned(), "2h".to_owned())]);
        let config = settings.build().unwrap();
        assert_eq!(config.access_ttl, Duration::from_secs(7200));
        assert_eq!(config.code_digits, 6);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let mut settings = Settings::default();
        settings.set("code_digits", "12");
        let msg = settings.build().unwrap_err().to_string();
        assert!(msg.contains("PORTCULLIS_CODE_DIGITS"), "{msg}");
        let mut settings = Settings::default();
        settings.set("log", "portcullis=loud");
        let msg = settings.build().unwrap_err().to_string();
        assert!(msg.contains("PORTCULLIS_LOG"), "{msg}");
    }
}
