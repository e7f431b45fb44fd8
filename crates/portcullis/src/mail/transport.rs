//! Where messages go: the console (development), `.eml` files, or SMTP.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::{Rendered, SENDS_AT_ONCE};
use crate::config::{Config, MailTransport};

pub enum Transport {
    Console,
    /// `.eml` files in a folder only the server's user can read: they hold live codes.
    File(AsyncFileTransport<Tokio1Executor>, PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(match config.mail_transport {
            MailTransport::Console => Transport::Console,
            MailTransport::File => {
                private_dir(&config.mail_dir).with_context(|| {
                    format!("cannot create mail folder {}", config.mail_dir.display())
                })?;
                let transport = AsyncFileTransport::new(&config.mail_dir);
                Transport::File(transport, config.mail_dir.clone())
            }
            MailTransport::Smtp => {
                let url = config
                    .smtp_url
                    .as_ref()
                    .context("PORTCULLIS_SMTP_URL is not set")?;
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("PORTCULLIS_SMTP_URL is not a valid SMTP URL")?
                    .timeout(Some(Duration::from_secs(15)))
                    .pool_config(PoolConfig::new().max_size(SENDS_AT_ONCE as u32))
                    .build();
                Transport::Smtp(smtp)
            }
        })
    }

    pub async fn send(&self, from: &str, to: &str, message: &Rendered) -> anyhow::Result<()> {
        match self {
            // Development only (production refuses it): the code is meant to be read here.
            Transport::Console => println!(
                "----- email to {to} -----\nSubject: {}\n\n{}\n-----",
                message.subject,
                message.text.trim_end()
            ),
            Transport::File(file, dir) => {
                let id = file.send(build(from, to, message)?).await?;
                restrict(&dir.join(format!("{id}.eml")), 0o600)?;
            }
            Transport::Smtp(smtp) => {
                smtp.send(build(from, to, message)?).await?;
            }
        }
        Ok(())
    }
}

/// Creates the folder (and its parents) if needed and makes it private.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    restrict(dir, 0o700)
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// A multipart message with the text and HTML parts.
fn build(from: &str, to: &str, message: &Rendered) -> anyhow::Result<Message> {
    Ok(Message::builder()
        .from(from.parse::<Mailbox>()?)
        .to(to.parse::<Mailbox>()?)
        .subject(&message.subject)
        .multipart(MultiPart::alternative_plain_html(
            message.text.clone(),
            message.html.clone(),
        ))?)
}
