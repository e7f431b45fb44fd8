//! The `portcullis` command: parse arguments, load configuration, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::admin::{self, Admin, ClientChange, Report};
use portcullis::config::{Config, LogFormat};
use portcullis::crypto::Secrets;
use portcullis::{App, Settings};
use secrecy::SecretString;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "A self-hosted authentication server"
)]
struct Cli {
    /// TOML configuration file (also PORTCULLIS_CONFIG).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Overrides PORTCULLIS_DATABASE_URL.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Print results as JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Overrides PORTCULLIS_LISTEN.
        #[arg(long)]
        listen: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage users' API keys.
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// Manage machine clients.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Token signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Users' device sessions.
    Session {
        #[command(subcommand)]
        command: SessionCommand,
    },
    /// The security events.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
}

#[derive(Subcommand)]
enum SessionCommand {
    /// An account's live sessions.
    List {
        /// The account, by email or id.
        #[arg(long)]
        user: String,
    },
    /// End an account's session on one device, or all of its sessions.
    Revoke {
        #[arg(long)]
        user: String,
        /// Only this device's session.
        #[arg(long)]
        device: Option<String>,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Events, newest first.
    List {
        /// Of one account, by email or id.
        #[arg(long)]
        user: Option<String>,
        /// Since a time: a duration ago (`24h`) or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Of one kind, e.g. `login_failed`.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// A new key signs from now on; the old one verifies until its tokens expire.
    Rotate,
    /// Every key and its state: signing, verifying (until when) or retired.
    List,
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Make a client; prints its client_id, api_key and api_secret (the secret only this once).
    Create {
        #[arg(long)]
        name: String,
        /// An allowed IP range (repeatable); none allows every address.
        #[arg(long = "allow-ip")]
        allow_ip: Vec<String>,
        /// A scope its tokens carry (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
    },
    /// Every client (never a secret).
    List,
    Show {
        id: i64,
    },
    /// Refuse its logins and end its sessions: its tokens stop working at once.
    Disable {
        id: i64,
    },
    Enable {
        id: i64,
    },
    /// Add an allowed IP range.
    AllowIp {
        id: i64,
        cidr: String,
    },
    /// Remove an allowed IP range.
    DenyIp {
        id: i64,
        cidr: String,
    },
    /// A new secret (printed once); the old one and the client's sessions end.
    RotateSecret {
        id: i64,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Make a key for an account; prints its id and the key, once.
    Create {
        /// The account, by email or id.
        #[arg(long)]
        user: String,
        #[arg(long)]
        name: String,
        /// A scope (repeatable): dev_login, sessions, introspect, or your own.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A duration from now (`90d`) or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
    },
    /// An account's keys (never their secrets).
    List {
        #[arg(long)]
        user: String,
    },
    /// Revoke a key by id, at once.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets hidden).
    Check,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a verified account.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        username: Option<String>,
    },
    /// List accounts.
    List,
    /// Disable an account (by email or id) and end its sessions.
    Disable { user: String },
    /// Re-enable an account.
    Enable { user: String },
    /// Clear a lost authenticator (by email or id): TOTP off, every session ended.
    TotpReset { user: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match load_config(&cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("portcullis: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("portcullis: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portcullis: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut settings = Settings::load(cli.config.as_deref())?;
    if let Some(url) = &cli.database_url {
        settings.set("database_url", url);
    }
    if let Command::Serve {
        listen: Some(listen),
    } = &cli.command
    {
        settings.set("listen", listen);
    }
    let config = settings.build()?;
    Secrets::check(&config)?;
    Ok(config)
}

fn init_logging(config: &Config) {
    // Validated with the rest of the configuration.
    let filter = tracing_subscriber::EnvFilter::new(&config.log);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log line that cannot be written is lost; reporting that on the same
        // closed stderr would panic the request that logged it.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    let report = match cli.command {
        Command::Serve { .. } => {
            let app = App::build(config).await?;
            return app.run_until(shutdown_signal()).await;
        }
        Command::Migrate => {
            Admin::connect(config).await?;
            Report {
                json: serde_json::json!({ "migrated": true }),
                text: "migrations applied".into(),
            }
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => config_check(&config),
        command => operate(Admin::connect(config).await?, command).await?,
    };
    if cli.json {
        println!("{}", report.json);
    } else if !report.text.is_empty() {
        println!("{}", report.text);
    }
    Ok(())
}

/// The operator's commands, over the library's `Admin`.
async fn operate(admin: Admin, command: Command) -> anyhow::Result<Report> {
    match command {
        Command::User { command } => match command {
            UserCommand::Create {
                email,
                password,
                username,
            } => {
                let password = SecretString::from(password);
                admin
                    .create_user(&email, password, username.as_deref())
                    .await
            }
            UserCommand::List => admin.list_users().await,
            UserCommand::Disable { user } => admin.set_disabled(&user, true).await,
            UserCommand::Enable { user } => admin.set_disabled(&user, false).await,
            UserCommand::TotpReset { user } => admin.reset_totp(&user).await,
        },
        Command::Session { command } => match command {
            SessionCommand::List { user } => admin.list_sessions(&user).await,
            SessionCommand::Revoke { user, device } => {
                admin.revoke_sessions(&user, device.as_deref()).await
            }
        },
        Command::Apikey { command } => match command {
            ApikeyCommand::Create {
                user,
                name,
                scopes,
                expires,
            } => {
                let expires = expires.as_deref();
                admin.create_api_key(&user, &name, scopes, expires).await
            }
            ApikeyCommand::List { user } => admin.list_api_keys(&user).await,
            ApikeyCommand::Revoke { id } => admin.revoke_api_key(&id).await,
        },
        Command::Client { command } => match command {
            ClientCommand::Create {
                name,
                allow_ip,
                scopes,
            } => admin.create_client(&name, &allow_ip, scopes).await,
            ClientCommand::List => admin.list_clients().await,
            ClientCommand::Show { id } => admin.show_client(id).await,
            ClientCommand::Disable { id } => admin.change_client(id, ClientChange::Disable).await,
            ClientCommand::Enable { id } => admin.change_client(id, ClientChange::Enable).await,
            ClientCommand::AllowIp { id, cidr } => {
                let change = ClientChange::AllowIp(admin::cidr(&cidr)?);
                admin.change_client(id, change).await
            }
            ClientCommand::DenyIp { id, cidr } => {
                let change = ClientChange::DenyIp(admin::cidr(&cidr)?);
                admin.change_client(id, change).await
            }
            ClientCommand::RotateSecret { id } => {
                admin.change_client(id, ClientChange::RotateSecret).await
            }
        },
        Command::Keys { command } => match command {
            KeysCommand::Rotate => admin.rotate_signing_key().await,
            KeysCommand::List => admin.list_signing_keys().await,
        },
        Command::Audit {
            command:
                AuditCommand::List {
                    user,
                    since,
                    kind,
                    limit,
                },
        } => {
            let (user, since, kind) = (user.as_deref(), since.as_deref(), kind.as_deref());
            admin.list_audit(user, since, kind, limit).await
        }
        Command::Serve { .. } | Command::Migrate | Command::Config { .. } => {
            anyhow::bail!("not an operator command")
        }
    }
}

/// The effective settings, secrets hidden.
fn config_check(config: &Config) -> Report {
    let summary = serde_json::json!({
        "listen": config.listen.to_string(),
        "database": config.database_url.split('?').next().unwrap_or_default().rsplit('@').next().unwrap_or_default(),
        "mode": format!("{:?}", config.mode).to_lowercase(),
        "issuer": config.issuer,
        "mail_transport": format!("{:?}", config.mail_transport).to_lowercase(),
        "login_verification": format!("{:?}", config.login_verification).to_lowercase(),
        "master_key": if config.master_key.is_some() { "configured" } else { "key file" },
    });
    let text = format!(
        "configuration is valid\n{}",
        serde_json::to_string_pretty(&summary).unwrap_or_default()
    );
    Report {
        json: summary,
        text,
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
