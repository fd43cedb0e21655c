//! Uploads stream: a 1 GiB image through the server binary barely moves its peak RSS.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bytes_stream::chunks;
use fleet_protocol::{ArtifactKind, Sha256Digest};
use fleet_tests::{ADMIN_TOKEN, manifest_for, release_key, sign};
use sha2::{Digest as _, Sha256};

mod bytes_stream {
    /// 1 MiB chunks of a deterministic, non-repeating pattern.
    pub fn chunks(count: u64) -> impl Iterator<Item = Vec<u8>> {
        (0..count).map(|i| {
            let mut chunk = vec![0u8; 1 << 20];
            for (j, word) in chunk.chunks_mut(8).enumerate() {
                word.copy_from_slice(&(i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ j as u64).to_le_bytes());
            }
            chunk
        })
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn one_gib_upload_keeps_server_memory_flat() {
    const MIB: u64 = 1024;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet-server-under-test"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--embedded-broker",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .env("FLEET_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FLEET_LOG", "info")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut lines = stdout.lines();
    let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
        line.split("local_addr=").nth(1).map(|rest| rest.split_whitespace().next().unwrap().to_owned())
    });
    // Keep draining the log so the server never writes into a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let client = fleet_cli::ApiClient::new(format!("http://{}", addr.expect("server logs its address")), ADMIN_TOKEN);
    let pem = String::from_utf8(fleet_tests::sample("test-only-release.pub")).unwrap();
    client.add_key("release", &pem).await.unwrap();

    let mut hasher = Sha256::new();
    for chunk in chunks(MIB) {
        hasher.update(&chunk);
    }
    let digest = Sha256Digest::from_bytes(hasher.finalize().into());
    let mut manifest = manifest_for(ArtifactKind::Firmware, "big-os", "1.0.0", b"");
    manifest.size = MIB << 20;
    manifest.sha256 = digest;
    let envelope = sign(&manifest, &[&release_key()]);

    let before = vm_hwm_kib(pid);
    let stream = futures_util::stream::iter(chunks(MIB).map(Ok::<_, std::io::Error>));
    let started = Instant::now();
    let artifact = client
        .upload(
            ArtifactKind::Firmware,
            serde_json::to_vec(&envelope).unwrap(),
            reqwest::Body::wrap_stream(stream),
            MIB << 20,
        )
        .await
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    let after = vm_hwm_kib(pid);
    eprintln!("1 GiB upload: {:.0} MB/s; server VmHWM {} -> {} KiB", 1073.741824 / secs, before, after);
    assert_eq!(artifact.sha256, digest.to_hex());
    assert!(after - before < 64 * 1024, "peak RSS grew by {} KiB", after - before);
    drop(server);
}
