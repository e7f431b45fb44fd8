//! The `portcullis` command: parse arguments, load configuration, call the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::admin::{Admin, ClientChange};
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
    let json = cli.json;
    match cli.command {
        Command::Serve { .. } => {
            let app = App::build(config).await?;
            app.run_until(shutdown_signal()).await
        }
        Command::Migrate => {
            Admin::connect(config).await?;
            print(
                json,
                &serde_json::json!({ "migrated": true }),
                "migrations applied",
            );
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let summary = serde_json::json!({
                "listen": config.listen.to_string(),
                "database": config.database_url.split('?').next().unwrap_or_default().rsplit('@').next().unwrap_or_default(),
                "mode": format!("{:?}", config.mode).to_lowercase(),
                "issuer": config.issuer,
                "mail_transport": format!("{:?}", config.mail_transport).to_lowercase(),
                "login_verification": format!("{:?}", config.login_verification).to_lowercase(),
                "master_key": if config.master_key.is_some() { "configured" } else { "key file" },
            });
            print(
                json,
                &summary,
                &format!("configuration is valid\n{}", pretty(&summary)),
            );
            Ok(())
        }
        Command::Apikey { command } => apikey(Admin::connect(config).await?, command, json).await,
        Command::Client { command } => client(Admin::connect(config).await?, command, json).await,
        Command::Keys { command } => keys(Admin::connect(config).await?, command, json).await,
        Command::User { command } => {
            let admin = Admin::connect(config).await?;
            match command {
                UserCommand::Create {
                    email,
                    password,
                    username,
                } => {
                    let user = admin
                        .create_user(&email, SecretString::from(password), username.as_deref())
                        .await?;
                    print(
                        json,
                        &user,
                        &format!("created user {} <{}>", user.id, user.email),
                    );
                }
                UserCommand::List => {
                    let users = admin.list_users().await?;
                    let text = users
                        .iter()
                        .map(|u| {
                            let state = if u.disabled {
                                "disabled"
                            } else if u.verified {
                                "active"
                            } else {
                                "unverified"
                            };
                            format!(
                                "{}\t{}\t{}\t{state}",
                                u.id,
                                u.email,
                                u.username.as_deref().unwrap_or("-")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n");
                    print(json, &users, &text);
                }
                UserCommand::Disable { user } => {
                    let id = admin.set_disabled(&user, true).await?;
                    print(
                        json,
                        &serde_json::json!({ "id": id, "disabled": true }),
                        &format!("disabled {id}"),
                    );
                }
                UserCommand::Enable { user } => {
                    let id = admin.set_disabled(&user, false).await?;
                    print(
                        json,
                        &serde_json::json!({ "id": id, "disabled": false }),
                        &format!("enabled {id}"),
                    );
                }
                UserCommand::TotpReset { user } => {
                    let id = admin.reset_totp(&user).await?;
                    print(
                        json,
                        &serde_json::json!({ "id": id, "totp_enabled": false }),
                        &format!(
                            "two-factor authentication reset for {id}; its sessions are ended"
                        ),
                    );
                }
            }
            Ok(())
        }
    }
}

async fn keys(admin: Admin, command: KeysCommand, json: bool) -> anyhow::Result<()> {
    match command {
        KeysCommand::Rotate => {
            let rotated = admin.rotate_signing_key().await?;
            let text = match rotated["superseded"].as_str() {
                Some(old) => format!(
                    "key {} signs from now on; {old} verifies until {}",
                    rotated["kid"].as_str().unwrap_or_default(),
                    rotated["superseded_verifies_until"]
                        .as_str()
                        .unwrap_or_default()
                ),
                None => format!(
                    "key {} signs from now on",
                    rotated["kid"].as_str().unwrap_or_default()
                ),
            };
            print(json, &rotated, &text);
        }
        KeysCommand::List => {
            let keys = admin.list_signing_keys().await?;
            let text = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}\t{}\tcreated {}\t{}{}",
                        k["kid"].as_str().unwrap_or_default(),
                        k["alg"].as_str().unwrap_or_default(),
                        k["created_at"].as_str().unwrap_or_default(),
                        k["state"].as_str().unwrap_or_default(),
                        k["verifies_until"]
                            .as_str()
                            .map(|at| format!(" until {at}"))
                            .unwrap_or_default(),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &keys, &text);
        }
    }
    Ok(())
}

async fn client(admin: Admin, command: ClientCommand, json: bool) -> anyhow::Result<()> {
    let client = match command {
        ClientCommand::Create {
            name,
            allow_ip,
            scopes,
        } => admin.create_client(&name, &allow_ip, scopes).await?,
        ClientCommand::List => {
            let clients = admin.list_clients().await?;
            let text = clients
                .iter()
                .map(client_line)
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &clients, &text);
            return Ok(());
        }
        ClientCommand::Show { id } => admin.show_client(id).await?,
        ClientCommand::Disable { id } => admin.change_client(id, ClientChange::Disable).await?,
        ClientCommand::Enable { id } => admin.change_client(id, ClientChange::Enable).await?,
        ClientCommand::AllowIp { id, cidr } => {
            let net = portcullis::admin::cidr(&cidr)?;
            admin.change_client(id, ClientChange::AllowIp(net)).await?
        }
        ClientCommand::DenyIp { id, cidr } => {
            let net = portcullis::admin::cidr(&cidr)?;
            admin.change_client(id, ClientChange::DenyIp(net)).await?
        }
        ClientCommand::RotateSecret { id } => {
            admin.change_client(id, ClientChange::RotateSecret).await?
        }
    };
    let mut text = client_line(&client);
    if let Some(secret) = client["api_secret"].as_str() {
        text.push_str(&format!(
            "\napi_key    {}\napi_secret {secret}\n(the secret is shown only this once)",
            client["api_key"].as_str().unwrap_or_default()
        ));
    }
    print(json, &client, &text);
    Ok(())
}

/// One client, as a line of text.
fn client_line(c: &serde_json::Value) -> String {
    let list = |field: &str| {
        let items: Vec<&str> = c[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(",")
        }
    };
    format!(
        "{}\t{}\t{}\tscopes {}\tallow {}",
        c["client_id"],
        c["name"].as_str().unwrap_or_default(),
        c["status"].as_str().unwrap_or_default(),
        list("scopes"),
        list("allowed_ips"),
    )
}

async fn apikey(admin: Admin, command: ApikeyCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ApikeyCommand::Create {
            user,
            name,
            scopes,
            expires,
        } => {
            let key = admin
                .create_api_key(&user, &name, scopes, expires.as_deref())
                .await?;
            let text = format!(
                "created API key {}\n{}\n(the key is shown only this once)",
                key["id"].as_str().unwrap_or_default(),
                key["key"].as_str().unwrap_or_default()
            );
            print(json, &key, &text);
        }
        ApikeyCommand::List { user } => {
            let keys = admin.list_api_keys(&user).await?;
            let text = keys
                .iter()
                .map(|k| {
                    let scopes: Vec<&str> = k["scopes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str())
                        .collect();
                    format!(
                        "{}\t{}\t{}\texpires {}",
                        k["id"].as_str().unwrap_or_default(),
                        k["name"].as_str().unwrap_or_default(),
                        if scopes.is_empty() {
                            "-".to_owned()
                        } else {
                            scopes.join(",")
                        },
                        k["expires_at"].as_str().unwrap_or("never"),
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(json, &keys, &text);
        }
        ApikeyCommand::Revoke { id } => {
            let user_id = admin.revoke_api_key(&id).await?;
            print(
                json,
                &serde_json::json!({ "id": id, "user_id": user_id, "revoked": true }),
                &format!("revoked API key {id}"),
            );
        }
    }
    Ok(())
}

fn print(json: bool, value: &impl serde::Serialize, text: &str) {
    if json {
        println!("{}", serde_json::to_string(value).unwrap_or_default());
    } else if !text.is_empty() {
        println!("{text}");
    }
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
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
