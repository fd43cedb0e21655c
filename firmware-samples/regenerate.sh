#!/usr/bin/env bash
# Regenerates the sample artifacts, envelopes and negative fixtures in this folder.
# The key pair is TEST-ONLY: it is public in this repository and must never sign anything
# a real device installs. Run from the repository root: bash firmware-samples/regenerate.sh
# (Keeps the existing key pair unless it is missing, so the golden envelopes stay stable.)
set -euo pipefail
cd "$(dirname "$0")"
fleetctl=(cargo run --quiet -p fleet-cli --bin fleetctl --)

if [ ! -f test-only-release.key ]; then
  openssl genpkey -algorithm ed25519 -out test-only-release.key
  openssl pkey -in test-only-release.key -pubout -out test-only-release.pub
fi
if [ ! -f test-only-other.key ]; then
  openssl genpkey -algorithm ed25519 -out test-only-other.key
  openssl pkey -in test-only-other.key -pubout -out test-only-other.pub
fi

# Deterministic sample images: a 64 KiB "firmware" made of a counter pattern.
python3 -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(65536)))' > gateway-os-1.0.0.img
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7) % 253 for i in range(65536)))' > gateway-os-1.1.0.img
printf 'mqtt_keepalive = 30\nlog_level = "info"\n' > gw-config-1.0.0.toml

"${fleetctl[@]}" sign gateway-os-1.0.0.img --key test-only-release.key --name gateway-os --version 1.0.0 --hardware rpi4 --hardware sim
"${fleetctl[@]}" sign gateway-os-1.1.0.img --key test-only-release.key --name gateway-os --version 1.1.0 --hardware rpi4 --hardware sim
"${fleetctl[@]}" sign gw-config-1.0.0.toml --kind config --key test-only-release.key --name gw-config --version 1.0.0 --any-hardware --requires-firmware '>=1.0, <2'

# Negative fixtures.
mkdir -p negative
# The 1.0.0 image with one byte changed: the envelope's sha256 no longer matches.
python3 -c 'import sys; b=bytearray(open("gateway-os-1.0.0.img","rb").read()); b[100]^=1; sys.stdout.buffer.write(b)' > negative/tampered.img
# Signed by a key nobody trusts.
"${fleetctl[@]}" sign gateway-os-1.0.0.img --key test-only-other.key --name gateway-os --version 1.0.0 --hardware rpi4 --out negative/wrong-key.dsse.json
# A valid signature moved onto other payload bytes.
python3 - <<'PY'
import base64, json
env = json.load(open("gateway-os-1.0.0.img.dsse.json"))
manifest = json.loads(base64.b64decode(env["payload"]))
manifest["version"] = "9.9.9"
env["payload"] = base64.b64encode(json.dumps(manifest).encode()).decode()
json.dump(env, open("negative/tampered-payload.dsse.json", "w"), indent=2)
PY
printf '{"payloadType": "application/vnd.fleet.manifest.v1+json", "payload": "not base64!", "signatures": []}\n' > negative/malformed.dsse.json
echo "regenerated"
