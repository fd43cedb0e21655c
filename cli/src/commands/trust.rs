//! `fleetctl trust init|add-key|revoke-key|sign|push|show` (CONTRACT §11).
//!
//! A draft is a DSSE envelope of type `application/vnd.fleet.trust.v1+json` without
//! signatures: `init` makes the first, `add-key` and `revoke-key` make the next version from
//! the server's latest (or `--from FILE`). Root key holders add their signatures one at a
//! time, offline (`sign`); `push` hands the signed document to the server, which checks it
//! by TUF's rule. Revoking a release key on the server (`keys revoke`) is followed by
//! `trust revoke-key KEYID`: that is the trust update that makes devices refuse the key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use fleet_protocol::envelope::{decode_base64, encode_base64};
use fleet_protocol::sign::{add_signature, signing_key_from_pem};
use fleet_protocol::trust::{Role, Roles, TRUST_PAYLOAD_TYPE, TRUST_SCHEMA, TrustDocument, TrustKey, TrustKind};
use fleet_protocol::{Envelope, KeyId, PublicKey};
use time::OffsetDateTime;

use super::say;
use crate::ApiClient;
use crate::output::Format;

/// The role a key is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    Root,
    Firmware,
    Config,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the first trust document (unsigned): root, firmware and config roles.
    Init(InitArgs),
    /// Write the next version (unsigned) with a key added to a role.
    AddKey(AddKeyArgs),
    /// Write the next version (unsigned) without a key, in every role.
    RevokeKey(RevokeKeyArgs),
    /// Add signatures to a trust document, in place (one root key holder at a time).
    Sign {
        /// The trust document (DSSE envelope JSON).
        file: PathBuf,
        /// A root private key (PKCS#8 PEM); repeatable.
        #[arg(long = "key", required = true)]
        keys: Vec<PathBuf>,
    },
    /// Store a signed trust document on the server (devices are told at once).
    Push {
        /// The signed trust document (DSSE envelope JSON).
        file: PathBuf,
    },
    /// Show the server's latest trust document, or one version.
    Show {
        /// The version to show (default: the latest).
        #[arg(long)]
        version: Option<u64>,
    },
}

/// `trust init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Root public keys (PEM), comma-separated or repeated: they sign trust documents.
    #[arg(long, value_delimiter = ',', required = true)]
    pub root: Vec<PathBuf>,
    /// Root signatures required.
    #[arg(long, default_value_t = 1)]
    pub root_threshold: usize,
    /// Firmware release public keys (PEM), comma-separated or repeated.
    #[arg(long, value_delimiter = ',', required = true)]
    pub firmware: Vec<PathBuf>,
    /// Firmware signatures required.
    #[arg(long, default_value_t = 1)]
    pub firmware_threshold: usize,
    /// Config release public keys (default: the firmware keys).
    #[arg(long, value_delimiter = ',')]
    pub config: Vec<PathBuf>,
    /// Config signatures required.
    #[arg(long, default_value_t = 1)]
    pub config_threshold: usize,
    /// The version (1 unless devices ship with a later one).
    #[arg(long, default_value_t = 1)]
    pub version: u64,
    /// Devices refuse the document after this long, e.g. `365d`.
    #[arg(long, default_value = "365d")]
    pub expires_in: humantime::Duration,
    /// Where to write the unsigned document.
    #[arg(long, default_value = "trust.json")]
    pub out: PathBuf,
}

/// Where the next version starts from and where it goes.
#[derive(Debug, clap::Args)]
pub struct NextArgs {
    /// Start from this trust document instead of the server's latest.
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// The next version expires after this long, e.g. `365d`.
    #[arg(long, default_value = "365d")]
    pub expires_in: humantime::Duration,
    /// Where to write the unsigned next version.
    #[arg(long, default_value = "trust.json")]
    pub out: PathBuf,
}

/// `trust add-key`.
#[derive(Debug, clap::Args)]
pub struct AddKeyArgs {
    /// The roles the key joins, comma-separated or repeated (e.g. `firmware,config`).
    #[arg(long, value_enum, value_delimiter = ',', required = true)]
    pub role: Vec<RoleArg>,
    /// The public key (PEM).
    pub public_key: PathBuf,
    /// The roles' new threshold (default: unchanged).
    #[arg(long)]
    pub threshold: Option<usize>,
    #[command(flatten)]
    pub next: NextArgs,
}

/// `trust revoke-key`.
#[derive(Debug, clap::Args)]
pub struct RevokeKeyArgs {
    /// The key's id (lowercase hex SHA-256 of the raw public key).
    pub keyid: String,
    #[command(flatten)]
    pub next: NextArgs,
}

pub async fn run(client: Option<&ApiClient>, out: Format, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init(args) => write_draft(out, &args.out, &init(args)?),
        Command::AddKey(args) => {
            let mut doc = next_of(client, &args.next).await?;
            let key = read_public(&args.public_key)?;
            for name in &args.role {
                let role = role_mut(&mut doc.roles, *name);
                if !role.keyids.contains(key.keyid()) {
                    role.keyids.push(key.keyid().clone());
                }
                role.threshold = args.threshold.unwrap_or(role.threshold);
            }
            doc.keys.insert(key.keyid().clone(), TrustKey { public_key_pem: key.to_pem() });
            finish(out, &args.next.out, doc)
        }
        Command::RevokeKey(args) => {
            let keyid = KeyId::parse(&args.keyid).context("a keyid is 64 lowercase hex characters")?;
            let mut doc = next_of(client, &args.next).await?;
            if doc.keys.remove(&keyid).is_none() {
                bail!("key {keyid} is not in trust document version {}", doc.version - 1);
            }
            for role in [&mut doc.roles.root, &mut doc.roles.firmware, &mut doc.roles.config] {
                role.keyids.retain(|k| k != &keyid);
            }
            finish(out, &args.next.out, doc)
        }
        Command::Sign { file, keys } => sign(out, file, keys),
        Command::Push { file } => {
            let envelope = read_envelope(file)?;
            let stored = need(client)?.push_trust(&envelope).await?;
            let doc = payload_of(&stored)?;
            say(out, format_args!("stored trust document version {}", doc.version), &doc)
        }
        Command::Show { version } => {
            let envelope = need(client)?.get_trust(*version).await?;
            let doc = payload_of(&envelope)?;
            let signers: Vec<&str> = envelope.signatures.iter().map(|s| s.keyid.as_str()).collect();
            let json = serde_json::json!({"document": doc, "signed_by": signers});
            say(out, serde_json::to_string_pretty(&json)?, &json)
        }
    }
}

/// The version of the server's latest trust document when it names `keyid`.
pub(crate) async fn latest_names(client: &ApiClient, keyid: &str) -> Option<u64> {
    let doc = payload_of(&client.get_trust(None).await.ok()?).ok()?;
    let keyid = KeyId::parse(keyid)?;
    doc.keys.contains_key(&keyid).then_some(doc.version)
}

fn need(client: Option<&ApiClient>) -> anyhow::Result<&ApiClient> {
    client.context("this command talks to the server: set FLEET_TOKEN")
}

fn read_public(path: &Path) -> anyhow::Result<PublicKey> {
    let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    PublicKey::from_pem(&pem).with_context(|| path.display().to_string())
}

fn role_of(paths: &[PathBuf], threshold: usize, keys: &mut BTreeMap<KeyId, TrustKey>) -> anyhow::Result<Role> {
    let mut keyids = Vec::new();
    for path in paths {
        let key = read_public(path)?;
        keys.insert(key.keyid().clone(), TrustKey { public_key_pem: key.to_pem() });
        keyids.push(key.keyid().clone());
    }
    Ok(Role { keyids, threshold })
}

fn init(args: &InitArgs) -> anyhow::Result<TrustDocument> {
    let mut keys = BTreeMap::new();
    let config = if args.config.is_empty() { &args.firmware } else { &args.config };
    let roles = Roles {
        root: role_of(&args.root, args.root_threshold, &mut keys)?,
        firmware: role_of(&args.firmware, args.firmware_threshold, &mut keys)?,
        config: role_of(config, args.config_threshold, &mut keys)?,
    };
    let expires_at = OffsetDateTime::now_utc().replace_nanosecond(0)? + *args.expires_in;
    let doc =
        TrustDocument { schema: TRUST_SCHEMA, kind: TrustKind::Trust, version: args.version, expires_at, keys, roles };
    doc.check()?;
    Ok(doc)
}

fn role_mut(roles: &mut Roles, role: RoleArg) -> &mut Role {
    match role {
        RoleArg::Root => &mut roles.root,
        RoleArg::Firmware => &mut roles.firmware,
        RoleArg::Config => &mut roles.config,
    }
}

/// The document after the server's latest (or `--from`), with the version and expiry moved.
async fn next_of(client: Option<&ApiClient>, args: &NextArgs) -> anyhow::Result<TrustDocument> {
    let envelope = match &args.from {
        Some(file) => read_envelope(file)?,
        None => need(client)?.get_trust(None).await?,
    };
    let mut doc = payload_of(&envelope)?;
    doc.version += 1;
    doc.expires_at = OffsetDateTime::now_utc().replace_nanosecond(0)? + *args.expires_in;
    Ok(doc)
}

/// Keys a document no role names any more leave it; then the rules are checked.
fn finish(out: Format, file: &Path, mut doc: TrustDocument) -> anyhow::Result<()> {
    let roles = &doc.roles;
    let used: Vec<KeyId> =
        [&roles.root, &roles.firmware, &roles.config].iter().flat_map(|r| r.keyids.iter().cloned()).collect();
    doc.keys.retain(|k, _| used.contains(k));
    doc.check()?;
    write_draft(out, file, &doc)
}

fn write_draft(out: Format, file: &Path, doc: &TrustDocument) -> anyhow::Result<()> {
    let envelope = Envelope {
        payload_type: TRUST_PAYLOAD_TYPE.into(),
        payload: encode_base64(&doc.to_bytes()),
        signatures: vec![],
    };
    std::fs::write(file, envelope.to_json_pretty()).with_context(|| format!("writing {}", file.display()))?;
    let what =
        format!("wrote {} (trust version {}, unsigned): sign it with the root keys", file.display(), doc.version);
    say(out, what, &serde_json::json!({"file": file, "version": doc.version}))
}

fn read_envelope(file: &Path) -> anyhow::Result<Envelope> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Envelope::from_json(&bytes).with_context(|| file.display().to_string())
}

/// The payload, parsed (for showing and for making the next version; devices and the
/// server verify before they read).
fn payload_of(envelope: &Envelope) -> anyhow::Result<TrustDocument> {
    if envelope.payload_type != TRUST_PAYLOAD_TYPE {
        bail!("not a trust document: payloadType {:?}", envelope.payload_type);
    }
    let payload = decode_base64(&envelope.payload).context("payload is not base64")?;
    Ok(TrustDocument::from_slice(&payload)?)
}

fn sign(out: Format, file: &Path, keys: &[PathBuf]) -> anyhow::Result<()> {
    let mut envelope = read_envelope(file)?;
    payload_of(&envelope)?;
    for path in keys {
        let pem = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = signing_key_from_pem(&pem).with_context(|| path.display().to_string())?;
        add_signature(&mut envelope, &key)?;
    }
    std::fs::write(file, envelope.to_json_pretty()).with_context(|| format!("writing {}", file.display()))?;
    let what = format!("{} now carries {} signature(s)", file.display(), envelope.signatures.len());
    say(out, what, &serde_json::json!({"file": file, "signatures": envelope.signatures.len()}))
}
