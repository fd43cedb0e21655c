//! `fleetctl sign FILE`: describe an artifact in a manifest and sign it offline.
//!
//! Hardware must be named (`--hardware`, repeatable); `--any-hardware` is the only way to
//! sign for every model. `--cosign ENVELOPE` adds this key's signature to an existing
//! envelope instead (threshold signing, one key holder at a time).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use fleet_protocol::manifest::SCHEMA;
use fleet_protocol::sign::{SigningKey, add_signature, sign_payload, signing_key_from_pem};
use fleet_protocol::{ArtifactKind, Envelope, HardwareModel, Manifest, ProductName, Sha256Digest};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use tokio::io::AsyncReadExt as _;

use crate::output::Format;

/// How to describe and sign an artifact; shared with `firmware upload --key …`.
#[derive(Debug, Clone, clap::Args)]
pub struct SignOptions {
    /// Private key (PKCS#8 PEM); repeat for several signatures.
    #[arg(long = "key")]
    pub keys: Vec<PathBuf>,
    /// Product name (the manifest's `name`).
    #[arg(long)]
    pub name: Option<String>,
    /// SemVer version.
    #[arg(long)]
    pub version: Option<String>,
    /// Compatible hardware model; repeatable.
    #[arg(long = "hardware")]
    pub hardware: Vec<String>,
    /// Sign for any hardware (an empty list in the manifest).
    #[arg(long, conflicts_with = "hardware")]
    pub any_hardware: bool,
    /// Devices refuse the artifact after this long, e.g. `90d` or `12h`.
    #[arg(long)]
    pub expires_in: Option<humantime::Duration>,
    /// Configs only: the firmware versions required, e.g. `>=1.4, <2`.
    #[arg(long)]
    pub requires_firmware: Option<String>,
    /// Let devices whose installed version matches REQ go back to this lower version, e.g.
    /// `>=1.2.0, <1.3.0`; without it devices refuse downgrades. Keep the range narrow.
    #[arg(long, value_name = "REQ")]
    pub allow_downgrade_from: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The artifact to sign.
    pub file: PathBuf,
    /// `firmware` or `config`.
    #[arg(long, default_value = "firmware", value_parser = parse_kind)]
    pub kind: ArtifactKind,
    #[command(flatten)]
    pub options: SignOptions,
    /// Add the signatures to this existing envelope instead of signing a new manifest.
    #[arg(long)]
    pub cosign: Option<PathBuf>,
    /// Output path (default: FILE.dsse.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn parse_kind(s: &str) -> Result<ArtifactKind, String> {
    ArtifactKind::parse(s).ok_or_else(|| format!("kind is `firmware` or `config`, not `{s}`"))
}

pub async fn run(out_format: Format, args: &Args) -> anyhow::Result<()> {
    if args.options.keys.is_empty() {
        bail!("give at least one private key with --key");
    }
    let keys = load_keys(&args.options.keys)?;
    let envelope = match &args.cosign {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let mut envelope = Envelope::from_json(&text)?;
            for key in &keys {
                add_signature(&mut envelope, key)?;
            }
            envelope
        }
        None => make_envelope(&args.file, args.kind, &args.options, &keys).await?,
    };
    let out = args.out.clone().unwrap_or_else(|| envelope_path(&args.file));
    std::fs::write(&out, envelope.to_json_pretty()).with_context(|| format!("writing {}", out.display()))?;
    super::say(out_format, format_args!("wrote {}", out.display()), &serde_json::json!({"wrote": out}))
}

/// `FILE.dsse.json`.
pub fn envelope_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".dsse.json");
    PathBuf::from(name)
}

pub fn load_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<SigningKey>> {
    paths
        .iter()
        .map(|p| {
            let pem = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            signing_key_from_pem(&pem).with_context(|| format!("{}", p.display()))
        })
        .collect()
}

/// Hashes `file` (streaming) and returns its size and SHA-256.
pub async fn digest_file(file: &Path) -> anyhow::Result<(u64, Sha256Digest)> {
    let mut f = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, Sha256Digest::from_bytes(hasher.finalize().into())))
}

/// Builds the manifest for `file` and signs it with every key.
pub async fn make_envelope(
    file: &Path,
    kind: ArtifactKind,
    opts: &SignOptions,
    keys: &[SigningKey],
) -> anyhow::Result<Envelope> {
    let (Some(name), Some(version)) = (&opts.name, &opts.version) else {
        bail!("--name and --version are required to sign");
    };
    if opts.hardware.is_empty() && !opts.any_hardware {
        bail!("name the compatible hardware with --hardware MODEL, or pass --any-hardware");
    }
    let (size, sha256) = digest_file(file).await?;
    let now = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let manifest = Manifest {
        schema: SCHEMA,
        kind,
        name: ProductName::parse(name.as_str()).context("--name")?,
        version: semver::Version::parse(version).context("--version is not SemVer")?,
        hardware: opts.hardware.iter().map(|h| HardwareModel::parse(h.as_str())).collect::<Result<_, _>>()?,
        size,
        sha256,
        created_at: now,
        expires_at: opts.expires_in.map(|d| now + *d),
        requires_firmware: version_req(opts.requires_firmware.as_deref(), "--requires-firmware")?,
        allow_downgrade_from: version_req(opts.allow_downgrade_from.as_deref(), "--allow-downgrade-from")?,
    };
    manifest.check()?;
    let refs: Vec<&SigningKey> = keys.iter().collect();
    Ok(sign_payload(&manifest.to_bytes(), &refs))
}

/// A flag's SemVer requirement, if given; the error names the flag.
fn version_req(raw: Option<&str>, flag: &str) -> anyhow::Result<Option<semver::VersionReq>> {
    raw.map(|r| semver::VersionReq::parse(r).with_context(|| format!("{flag} {r:?} is not a SemVer requirement")))
        .transpose()
}
