#!/usr/bin/env bash
# Installs everything the project needs, idempotently, from the package registries only.
# Every step checks first and skips what is already there, so a warm run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== setup: %s\n' "$*"; }

# The wasm-bindgen CLI must match the library exactly; read the version from Cargo.lock.
[ -f Cargo.lock ] || cargo generate-lockfile
bindgen_version=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock)

step "rust targets and components"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

step "wasm-bindgen-cli $bindgen_version"
# `--locked` fails: the registry lacks a version the CLI's lock file pins (see docs/architecture.md, "Tool chain").
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $bindgen_version" ]; then
  cargo install wasm-bindgen-cli --version "$bindgen_version" --force
fi

step "wasm-pack"
command -v wasm-pack >/dev/null || cargo install wasm-pack --locked

step "chromium, chromedriver and sqlite3 (Debian)"
# sqlite3: tests/http/deliveries.test.mjs rewrites a Durable Object's stored table to an older
# schema to test the migration.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v sqlite3 >/dev/null; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium chromium-driver sqlite3 >/dev/null
fi

step "npm packages"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Exactly what the lock file pins, and the lock file left as it is: it lists every platform's
  # optional workerd package, so `npm ci` accepts it and a fresh clone's tree stays clean.
  npm ci --no-audit --no-fund --loglevel=error
fi

# Kustomer's published app SDK, for its types only (tests/js/commands.test.mjs checks the app
# definition's commands against `Command`). Not an npm dependency: its own dependencies include
# puppeteer, whose install downloads a browser. The tarball is checked against the pinned digest.
sdk_version=0.0.55
sdk_integrity="sha512-FXNtj9yHy5/6eYSg3zerOAjtKVulCzVOHl/dDCNdf4V2gyW0llIa4R46I5q0ys1llrJvBjUp7M9CaFA3EeQM7Q=="
sdk_dir=build/vendor/apps-server-sdk
step "@kustomer/apps-server-sdk $sdk_version (types)"
if [ "$(cat "$sdk_dir/.integrity" 2>/dev/null)" != "$sdk_integrity" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack "@kustomer/apps-server-sdk@$sdk_version" --silent >/dev/null)
  got="sha512-$(openssl dgst -sha512 -binary "$tmp"/*.tgz | base64 -w0)"
  if [ "$got" != "$sdk_integrity" ]; then echo "setup: the SDK tarball's digest is $got, not the pinned one" >&2; exit 1; fi
  rm -rf "$sdk_dir" && mkdir -p "$sdk_dir"
  tar xzf "$tmp"/*.tgz -C "$sdk_dir" --strip-components=1
  echo "$sdk_integrity" > "$sdk_dir/.integrity"
  rm -rf "$tmp"
fi

echo
echo "setup: done"
