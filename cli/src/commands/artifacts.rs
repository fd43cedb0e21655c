//! `fleetctl firmware|configs upload|list|show|rm|download`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use fleet_protocol::ArtifactKind;
use futures_util::TryStreamExt as _;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt as _;
use tokio_util::io::ReaderStream;

use super::say;
use super::sign::{SignOptions, load_keys, make_envelope};
use crate::ApiClient;
use crate::output::{Format, print_json, print_list, views};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Upload FILE with its envelope (--envelope) or sign it on the fly (--key …).
    Upload {
        /// The image or document to upload.
        file: PathBuf,
        /// A signed envelope (default when no --key is given: FILE.dsse.json).
        #[arg(long, conflicts_with = "keys")]
        envelope: Option<PathBuf>,
        #[command(flatten)]
        sign: SignOptions,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// List, optionally by product name.
    List {
        /// Only this product (the manifest's `name`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show one (with its signed envelope in `--output json`).
    Show {
        /// The artifact's id.
        id: String,
    },
    /// Delete one (refused while a rollout uses it).
    Rm {
        /// The artifact's id.
        id: String,
    },
    /// Download the bytes to a file.
    Download {
        /// The artifact's id.
        id: String,
        /// The file to write.
        #[arg(long = "out", short = 'O')]
        file: PathBuf,
    },
}

pub async fn run(client: &ApiClient, out: Format, kind: ArtifactKind, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Upload { file, envelope, sign, quiet } => {
            let envelope_json = match (envelope, sign) {
                (Some(path), _) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                (None, opts) if !opts.keys.is_empty() => {
                    let keys = load_keys(&opts.keys)?;
                    make_envelope(file, kind, opts, &keys).await?.to_json_pretty().into_bytes()
                }
                (None, _) => {
                    let path = super::sign::envelope_path(file);
                    std::fs::read(&path).with_context(|| {
                        format!("no --envelope or --key given and {} is not readable", path.display())
                    })?
                }
            };
            let artifact = upload(client, kind, file, envelope_json, *quiet).await?;
            let line = format!("uploaded {} {} {} as {}", kind, artifact.name, artifact.version, artifact.id);
            say(out, line, &artifact)?;
        }
        Command::List { name } => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.list_artifacts(kind, name.as_deref(), cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let what = match kind {
                ArtifactKind::Firmware => "firmware",
                ArtifactKind::Config => "configs",
            };
            print_list(out, items, what, views::registry::artifacts_table)?;
        }
        Command::Show { id } => {
            let artifact = client.get_artifact(kind, id).await?;
            match out {
                Format::Json => print_json(&artifact)?,
                Format::Table => print!("{}", views::registry::artifact(&artifact)),
            }
        }
        Command::Rm { id } => {
            client.delete_artifact(kind, id).await?;
            say(out, format_args!("deleted {kind} {id}"), &serde_json::json!({"deleted": id}))?;
        }
        Command::Download { id, file: path } => {
            let response = client.blob(kind, id, None).await?;
            let mut file =
                tokio::fs::File::create(path).await.with_context(|| format!("creating {}", path.display()))?;
            let mut stream = response.bytes_stream();
            while let Some(chunk) = stream.try_next().await? {
                file.write_all(&chunk).await?;
            }
            file.sync_all().await?;
            say(out, format_args!("wrote {}", path.display()), &serde_json::json!({"wrote": path}))?;
        }
    }
    Ok(())
}

/// Streams `file` to the server with a progress bar.
async fn upload(
    client: &ApiClient,
    kind: ArtifactKind,
    file: &Path,
    envelope_json: Vec<u8>,
    quiet: bool,
) -> anyhow::Result<crate::client::Artifact> {
    let f = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
    let len = f.metadata().await?.len();
    if len == 0 && !file.is_file() {
        bail!("{} is not a regular file", file.display());
    }
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(len) };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}")
            .expect("a valid template"),
    );
    let progress = bar.clone();
    let stream = ReaderStream::with_capacity(f, 256 * 1024).inspect_ok(move |chunk| progress.inc(chunk.len() as u64));
    let result = client.upload(kind, envelope_json, reqwest::Body::wrap_stream(stream), len).await;
    bar.finish_and_clear();
    Ok(result?)
}
