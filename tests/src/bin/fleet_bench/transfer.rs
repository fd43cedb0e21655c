//! Benchmarks 2 and 3: a blob downloaded by many clients (beside nginx serving the same
//! file) and an image uploaded (beside hashing the same bytes in-process).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fleet_protocol::{ArtifactKind, Sha256Digest, paths};
use fleet_tests::ADMIN_TOKEN;
use tokio::io::AsyncWriteExt as _;

use crate::server::{Backends, Server, file_body, free_port, memory_mib};

/// Writes `size` pseudo-random bytes to `path` without holding them in memory.
pub async fn write_file(path: &Path, size: u64) -> anyhow::Result<Sha256Digest> {
    use sha2::Digest as _;
    let mut file = tokio::fs::File::create(path).await?;
    let mut hasher = sha2::Sha256::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        for b in &mut chunk[..n] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state as u8;
        }
        hasher.update(&chunk[..n]);
        file.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    file.sync_all().await?;
    Ok(Sha256Digest::from_bytes(hasher.finalize().into()))
}

/// SHA-256 of a file in 1 MiB reads: the in-process baseline, in MB/s.
pub fn hash_rate(path: &Path) -> anyhow::Result<f64> {
    use sha2::Digest as _;
    use std::io::Read as _;
    let started = Instant::now();
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    let _ = hasher.finalize();
    Ok(total as f64 / started.elapsed().as_secs_f64() / 1e6)
}

pub async fn upload(size: u64) -> anyhow::Result<()> {
    let server = Server::start(&Backends::default()).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("image.bin");
    let envelope = server.envelope(size, write_file(&path, size).await?).await?;
    let (before, _) = memory_mib(server.pid());
    let body = file_body(&path).await?;
    let started = Instant::now();
    server.client.upload(ArtifactKind::Firmware, envelope, body, size).await?;
    let took = started.elapsed();
    let (peak, _) = memory_mib(server.pid());
    let upload_rate = size as f64 / took.as_secs_f64() / 1e6;
    let hash = hash_rate(&path)?;
    println!("upload: {} MiB through fleetctl's client to the server (multipart, streamed)", size >> 20);
    println!("  upload                   {upload_rate:>8.0} MB/s  ({:.2} s)", took.as_secs_f64());
    println!("  baseline: sha2 in-process {hash:>7.0} MB/s");
    println!("  ratio                    {:>8.2}×", upload_rate / hash);
    println!("  server peak RSS          {peak:>8.1} MiB (was {before:.1} MiB before the upload)");
    Ok(())
}

pub async fn download(size: u64, clients: usize) -> anyhow::Result<()> {
    let server = Server::start(&Backends::default()).await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("blob.bin");
    let fw = server.firmware_file(&path, size, write_file(&path, size).await?).await?;
    let url = paths::api_url(&server.base, &paths::artifact_blob(ArtifactKind::Firmware, &fw));
    let ours = fetch_all(&url, Some(ADMIN_TOKEN), clients, size).await?;
    println!("download: one {} MiB blob, {clients} concurrent clients", size >> 20);
    println!("  fleet-server             {:>6.2} GB/s", ours);
    match nginx(&path).await {
        Some((nginx_url, mut child, _conf)) => {
            let theirs = fetch_all(&nginx_url, None, clients, size).await;
            // SIGTERM: the master stops its workers (SIGKILL would orphan them).
            let _ = tokio::process::Command::new("kill").arg(child.id().unwrap_or(0).to_string()).status().await;
            let _ = child.wait().await;
            let theirs = theirs?;
            println!("  baseline: nginx          {theirs:>6.2} GB/s");
            println!("  ratio                    {:>6.2}×", ours / theirs);
        }
        None => println!("  baseline: nginx is not installed here; skipped"),
    }
    Ok(())
}

/// Every client downloads the whole blob; aggregate GB/s.
async fn fetch_all(url: &str, token: Option<&str>, clients: usize, size: u64) -> anyhow::Result<f64> {
    use futures_util::StreamExt as _;
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let mut request = http.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        tasks.spawn(async move {
            let mut stream = request.send().await?.error_for_status()?.bytes_stream();
            let mut got = 0u64;
            while let Some(chunk) = stream.next().await {
                got += chunk?.len() as u64;
            }
            Ok::<_, reqwest::Error>(got)
        });
    }
    while let Some(done) = tasks.join_next().await {
        anyhow::ensure!(done?? == size, "short download");
    }
    Ok((size * clients as u64) as f64 / started.elapsed().as_secs_f64() / 1e9)
}

/// nginx serving `file`'s directory on a free port, if nginx is installed.
async fn nginx(file: &Path) -> Option<(String, tokio::process::Child, tempfile::TempDir)> {
    let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"].into_iter().find(|p| Path::new(p).exists())?;
    let conf_dir = tempfile::tempdir().ok()?;
    let port = free_port();
    let conf = format!(
        "daemon off; worker_processes 2; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; sendfile on; tcp_nopush on; client_body_temp_path {dir}; proxy_temp_path {dir};\n\
           fastcgi_temp_path {dir}; uwsgi_temp_path {dir}; scgi_temp_path {dir};\n\
           server {{ listen 127.0.0.1:{port}; root {root}; }} }}\n",
        dir = conf_dir.path().display(),
        root = file.parent()?.display(),
    );
    std::fs::write(conf_dir.path().join("nginx.conf"), conf).ok()?;
    let child = tokio::process::Command::new(binary)
        .args(["-c", conf_dir.path().join("nginx.conf").to_str()?, "-p", conf_dir.path().to_str()?])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let name = file.file_name()?.to_str()?;
            return Some((format!("http://127.0.0.1:{port}/{name}"), child, conf_dir));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
