//! `fleetctl keygen NAME`: an Ed25519 key pair as openssl would write it.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::Context as _;
use fleet_protocol::PublicKey;
use fleet_protocol::sign::{SigningKey, signing_key_to_pem};

use crate::output::Format;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Base name of the files: NAME.key and NAME.pub.
    pub name: String,
    /// Directory to write into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

pub fn run(out: Format, args: &Args) -> anyhow::Result<()> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    let private = args.dir.join(format!("{}.key", args.name));
    let public = args.dir.join(format!("{}.pub", args.name));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private)
        .with_context(|| format!("creating {}", private.display()))?;
    file.write_all(signing_key_to_pem(&key).as_bytes())?;
    file.sync_all()?;
    let pub_key = PublicKey::from_verifying_key(key.verifying_key());
    std::fs::write(&public, pub_key.to_pem()).with_context(|| format!("writing {}", public.display()))?;
    let text = format!("wrote {} and {}\nkeyid {}", private.display(), public.display(), pub_key.keyid());
    let json = serde_json::json!({"private_key": private, "public_key": public, "keyid": pub_key.keyid().to_string()});
    super::say(out, text, &json)
}
