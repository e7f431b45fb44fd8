//! Where the load run's mail goes: an SMTP server on loopback that takes
//! every message and keeps none, so that logins pay for mail as they would
//! in production (an SMTP conversation, on a pooled connection), and not for
//! a file created per message.
//!
//! `smtp-sink` listens on 127.0.0.1:0 and prints `listening on ADDR` once
//! it is ready.

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(session(stream));
    }
}

async fn session(stream: TcpStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 sink ESMTP\r\n").await?;
    while let Some(line) = lines.next_line().await? {
        let command = line.get(..4).unwrap_or(&line).to_ascii_uppercase();
        let reply: &[u8] = match command.as_str() {
            "EHLO" | "HELO" => b"250-sink\r\n250 8BITMIME\r\n",
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                while lines.next_line().await?.is_some_and(|line| line != ".") {}
                b"250 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 OK\r\n",
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
