#!/usr/bin/env bash
# The road to production (docs/going-live.md):
#
#   scripts/deploy.sh            `make deploy`: deploys the edge (build/worker/ and build/site/, as
#                                `make build` left them) to Cloudflare Workers with the pinned
#                                wrangler, and keeps the deployed address in build/deploy/edge-url.
#                                DRY_RUN=1 bundles into build/deploy/bundle/ and deploys nothing.
#   scripts/deploy.sh manifest   `make manifest`: writes app-manifest/stella_connect.json (MANIFEST=…
#                                for another file) for EDGE_URL, else for the address the last
#                                deploy kept, else for the placeholder (the checked-in definition).
#
# DEPLOY_DIR (default build/deploy) moves what this script keeps. Exit codes: 0 done, 1 wrangler
# or cargo failed, 2 refused before anything was deployed or written (what to fix is printed).
set -euo pipefail
cd "$(dirname "$0")/.."

deploy_dir=${DEPLOY_DIR:-build/deploy}
wrangler=node_modules/.bin/wrangler
# No usage metrics or error reports, and no banner: printing it asks the npm registry for a newer
# wrangler. With these, a dry run connects nowhere (tests/js/deploy.test.mjs checks it) and a real
# deploy talks only to Cloudflare's API.
export WRANGLER_SEND_METRICS=false WRANGLER_SEND_ERROR_REPORTS=false WRANGLER_HIDE_BANNER=true

refuse() {
  printf '%s\n' "$@" >&2
  exit 2
}

app_manifest() {
  cargo run --quiet --locked --bin app-manifest -- "$@"
}

# The placeholder's origin, read from the definition app-manifest prints without an edge URL
# (DEFAULT_EDGE_URL in src/manifest/mod.rs, the one place it is written).
placeholder() {
  EDGE_URL='' app_manifest print | node -e '
    let text = "";
    process.stdin.on("data", (d) => (text += d)).on("end", () => console.log(new URL(JSON.parse(text).iconUrl).origin));'
}

manifest() {
  local out=${MANIFEST:-app-manifest/stella_connect.json} url=${EDGE_URL:-} from="EDGE_URL" why
  if [ -z "$url" ] && [ -s "$deploy_dir/edge-url" ]; then
    url=$(<"$deploy_dir/edge-url")
    from="the deploy ($deploy_dir/edge-url)"
  fi
  # Written whole or not at all: a failed run leaves $out as it was.
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  if [ -z "$url" ]; then
    app_manifest print >"$tmp"
    cat "$tmp" >"$out"
    echo "$out: the definition for the placeholder edge $(placeholder) (no EDGE_URL and no deploy in $deploy_dir)."
    echo "  That is the checked-in one; make register refuses it for a real Kustomer. For a deployed edge: make deploy, then make manifest."
    return
  fi
  # Plain words for the mistakes app-manifest would refuse tersely, or not at all (a path).
  if ! why=$(node -e '
    const [text, placeholder] = process.argv.slice(1);
    const no = (why) => { console.log(why); process.exit(1); };
    let url;
    try { url = new URL(text); } catch { no("is not an address: give the edge'"'"'s https address, such as https://stella-connect-kustomer.<your-subdomain>.workers.dev"); }
    if (url.protocol !== "https:") no("must start with https://: Kustomer calls the edge and loads its pages over https");
    if (url.username || url.password) no("must not carry a user name or password");
    if (url.pathname !== "/" || /[?#]/.test(text)) no("must be the edge'"'"'s address alone, without a path, query or fragment: the definition adds /app/… and /v1/… itself");
    if (url.hostname === new URL(placeholder).hostname) no("is the placeholder, not a deployed edge: run make deploy first; make manifest then takes the address from the deploy");
  ' "$url" "$(placeholder)"); then
    refuse "Not written: the edge address $url (from $from) $why." "Nothing was changed in $out."
  fi
  app_manifest print --edge-url "$url" >"$tmp"
  cat "$tmp" >"$out"
  echo "$out: the definition for the edge at ${url%/} (taken from $from)."
  [ "$out" != app-manifest/stella_connect.json ] ||
    echo "  Register it with make register; do not check it in (the checked-in one is the placeholder's: delete $deploy_dir/edge-url, then make manifest)."
}

deploy() {
  local f
  for f in build/worker/edge.js build/worker/stella_connect.js build/worker/stella_connect_bg.wasm build/site/app/settings.html; do
    [ -s "$f" ] || refuse "Not deployed: $f is missing: run make build first (make deploy does, unless DRY_RUN=1)."
  done
  [ -x "$wrangler" ] || refuse "Not deployed: $wrangler is missing: run make setup (it installs the wrangler that package.json pins)."
  mkdir -p "$deploy_dir"
  echo "wrangler $(node -p 'require("./node_modules/wrangler/package.json").version') ($wrangler, pinned in package.json)"

  if [ "${DRY_RUN:-0}" = 1 ]; then
    rm -rf "$deploy_dir/bundle"
    "$wrangler" deploy --dry-run --outdir "$deploy_dir/bundle"
    echo "Dry run: the worker and its Wasm are bundled in $deploy_dir/bundle/ (the pages would go up from build/site/); nothing was deployed."
    return
  fi

  # The edge refuses to start without SETTINGS_KEY: ask Cloudflare whether the Worker has it
  # before uploading anything.
  local secrets status=0 errors="$deploy_dir/secret-list.err" has
  secrets=$("$wrangler" secret list --format json 2>"$errors") || status=$?
  local first_time="  openssl rand -base64 32 | $wrangler secret put SETTINGS_KEY"
  if [ "$status" != 0 ]; then
    if grep -q "If this is a new Worker" "$errors"; then
      refuse "Not deployed: this is the first deploy (Cloudflare has no Worker called stella-connect-kustomer on this account yet)." \
        "The edge refuses to start without its SETTINGS_KEY secret. Set it once (this also creates the Worker), then run make deploy again:" \
        "$first_time"
    fi
    cat "$errors" >&2
    echo "Not deployed: wrangler could not read the Worker's secrets (above). Log in with $wrangler login, or export CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID when the token reaches several accounts)." >&2
    exit 1
  fi
  has=$(node -e '
    let list;
    try { list = JSON.parse(process.argv[1]); } catch { console.log("unreadable"); process.exit(); }
    console.log(Array.isArray(list) && list.some((s) => s.name === "SETTINGS_KEY") ? "yes" : "no");' "$secrets")
  if [ "$has" = unreadable ]; then
    printf '%s\n' "$secrets" >&2
    echo "Not deployed: wrangler secret list answered the above, not the list of the Worker's secrets." >&2
    exit 1
  fi
  if [ "$has" = no ]; then
    refuse "Not deployed: the Worker has no SETTINGS_KEY secret, and the edge refuses to start without it (it seals each org's settings under that key)." \
      "Set it once, then run make deploy again:" "$first_time"
  fi

  local output="$deploy_dir/wrangler-output.ndjson"
  rm -f "$output"
  WRANGLER_OUTPUT_FILE_PATH="$output" "$wrangler" deploy --outdir "$deploy_dir/bundle"

  # wrangler's output file holds the deploy's targets: the workers.dev address, custom domains
  # ("host (custom domain)") and routes ("host/*"). A custom domain or a route wins over workers.dev.
  local url
  url=$(node -e '
    const lines = require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
    const deploy = lines.map((l) => JSON.parse(l)).reverse().find((e) => e.type === "deploy");
    const hosts = (deploy?.targets ?? []).map((t) => String(t).replace(/ \(.*\)$/, "").replace(/^https:\/\//, ""))
      .map((t) => t.match(/^([a-z0-9.-]+)(\/\*?)?$/i)?.[1]).filter(Boolean);
    const host = hosts.find((h) => !h.endsWith(".workers.dev")) ?? hosts[0];
    if (host) console.log(`https://${host}`);
  ' "$output")
  if [ -z "$url" ]; then
    rm -f "$deploy_dir/edge-url"
    echo "Deployed, but wrangler named no https address for it (no workers.dev and no plain route): give it to make manifest EDGE_URL=https://…" >&2
    return
  fi
  echo "$url" >"$deploy_dir/edge-url"
  cat <<TXT
Deployed the edge at $url (kept in $deploy_dir/edge-url).
  Check it:  curl $url/healthz        → {"ok":true}
  Next:      make manifest             (the definition for $url), then make register
TXT
}

case "${1:-deploy}" in
  deploy) deploy ;;
  manifest) manifest ;;
  *) refuse "usage: scripts/deploy.sh [deploy|manifest]   (env: DRY_RUN=1, EDGE_URL, MANIFEST, DEPLOY_DIR)" ;;
esac
