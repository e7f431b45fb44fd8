//! The machine's raw argon2id rate, the yardstick of password logins (SPEC
//! §8): hashes at the server's parameters (19 MiB, t=2, p=1) on one thread
//! per core, with nothing else in the way.
//!
//! `argon2-rate [SECONDS]` prints `argon2id <hashes per second>/s`.

use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Version};

fn main() -> anyhow::Result<()> {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5.0);
    let threads = std::thread::available_parallelism()?.get();
    let params = portcullis::password::params()?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
            std::thread::spawn(move || {
                let mut blocks = vec![argon2::Block::default(); argon2.params().block_count()];
                let mut out = [0u8; 32];
                let mut hashes = 0u64;
                while Instant::now() < deadline {
                    argon2
                        .hash_password_into_with_memory(
                            b"correct horse battery staple",
                            b"a sixteen byte salt",
                            &mut out,
                            &mut blocks,
                        )
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    hashes += 1;
                }
                anyhow::Ok(hashes)
            })
        })
        .collect();
    let mut hashes = 0;
    for worker in workers {
        hashes += worker
            .join()
            .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
    }
    let rate = hashes as f64 / started.elapsed().as_secs_f64();
    println!("argon2id {rate:.1}/s");
    Ok(())
}
