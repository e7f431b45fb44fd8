//! Where messages go: the console (development), `.eml` files, or SMTP.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::Rendered;
use crate::config::{Config, MailTransport};

pub enum Transport {
    Console,
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Transport {
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        Ok(match config.mail_transport {
            MailTransport::Console => Transport::Console,
            MailTransport::File => {
                std::fs::create_dir_all(&config.mail_dir).with_context(|| {
                    format!("cannot create mail folder {}", config.mail_dir.display())
                })?;
                Transport::File(AsyncFileTransport::new(&config.mail_dir))
            }
            MailTransport::Smtp => {
                let url = config
                    .smtp_url
                    .as_ref()
                    .context("PORTCULLIS_SMTP_URL is not set")?;
                let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
                    .context("PORTCULLIS_SMTP_URL is not a valid SMTP URL")?
                    .timeout(Some(Duration::from_secs(15)))
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
            Transport::File(file) => {
                file.send(build(from, to, message)?).await?;
            }
            Transport::Smtp(smtp) => {
                smtp.send(build(from, to, message)?).await?;
            }
        }
        Ok(())
    }
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
