//! Logs in with the emailed code, shows the account and its sessions, and
//! logs out:
//!
//! ```sh
//! PORTCULLIS_PASSWORD='correct horse battery' \
//!   cargo run -p portcullis-client --example login -- http://127.0.0.1:8080 ada@example.com
//! ```
//! The code is read from standard input (the server prints it with its
//! default console mail).

use std::io::BufRead;

use portcullis_client::{Client, LoginStep};
use secrecy::SecretString;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(base), Some(email)) = (args.next(), args.next()) else {
        eprintln!("usage: login BASE_URL EMAIL (password in PORTCULLIS_PASSWORD)");
        std::process::exit(2);
    };
    let password = SecretString::from(std::env::var("PORTCULLIS_PASSWORD")?);
    let client = Client::new(&base);
    let session = match client.login(&email, &password, None).await? {
        LoginStep::SignedIn(session) => session,
        LoginStep::TotpRequired => {
            eprint!("TOTP code: ");
            let code = SecretString::from(read_line()?);
            match client.login(&email, &password, Some(&code)).await? {
                LoginStep::CodeSent(step) => verify(&client, &step.email_key).await?,
                LoginStep::SignedIn(session) => session,
                LoginStep::TotpRequired => return Err("the TOTP code was not accepted".into()),
            }
        }
        LoginStep::CodeSent(step) => verify(&client, &step.email_key).await?,
    };
    let me = session.me().await?;
    println!("signed in as {} ({})", me.email, me.id);
    for s in session.sessions().await?.sessions {
        println!(
            "session on {}{}",
            s.device.device_id,
            if s.current { " (this one)" } else { "" }
        );
    }
    session.logout().await?;
    println!("logged out");
    Ok(())
}

async fn verify(
    client: &Client,
    email_key: &str,
) -> Result<portcullis_client::Session, Box<dyn std::error::Error>> {
    eprint!("the code emailed to you: ");
    let code = read_line()?;
    Ok(client.verify(email_key, &code).await?)
}

fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_owned())
}
