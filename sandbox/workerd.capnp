# Local run: the edge and the pages exactly as deployed, plus the Kustomer and Stella sandboxes and a router,
# on one socket. Start with scripts/serve.sh (it builds, picks the port and the state folder).
using Workerd = import "/workerd/workerd.capnp";
using Modules = import "modules.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .router),
    (name = "edge", worker = .edge),
    (name = "kustomer-sandbox", worker = .kustomer),
    (name = "stella-sandbox", worker = .stella),
    # The edge reaches the sandboxes through 127.0.0.1, as it reaches Kustomer and Stella in
    # production through the internet.
    (name = "loopback", network = (allow = ["local", "private"])),
    (name = "state", disk = (path = "../.local/state", writable = true)),
    # The pages as deployed: www/ and the Wasm package, assembled by `make build`.
    (name = "site", disk = (path = "../build/site")),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const router :Workerd.Worker = (
  modules = [
    (name = "router.js", esModule = embed "router.js"),
    (name = "home-html", text = embed "home.html"),
    (name = "home-js", text = embed "home.js"),
  ],
  compatibilityDate = "2026-11-01",
  bindings = [
    (name = "EDGE", service = "edge"),
    (name = "SITE", service = "site"),
    (name = "KUSTOMER", service = "kustomer-sandbox"),
    (name = "STELLA", service = "stella-sandbox"),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    (name = "edge.js", esModule = embed "../build/worker/edge.js"),
    (name = "stella_connect.js", esModule = embed "../build/worker/stella_connect.js"),
    (name = "stella_connect_bg.wasm", wasm = embed "../build/worker/stella_connect_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [
    (className = "OrgScheduler", uniqueKey = "stella-connect-org-scheduler", enableSql = true),
    # Counts key checks per key and address; on Cloudflare the rate-limiting binding does.
    (className = "RateLimiter", uniqueKey = "stella-connect-rate-limiter", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "state"),
  bindings = [
    (name = "SCHEDULER", durableObjectNamespace = "OrgScheduler"),
    (name = "LIMITER", durableObjectNamespace = "RateLimiter"),
    # Development only: accept http:// loopback URLs (the sandboxes). The other settings are
    # production's unless the environment sets them (an unset one is null: the default).
    (name = "ALLOW_LOOPBACK", text = "true"),
    # workerd cannot create objects in a jurisdiction ("Jurisdiction restrictions are not
    # implemented in workerd"): EU orgs are told where production keeps them, and kept here.
    (name = "JURISDICTIONS", text = "off"),
    # A development key for the settings at rest; production's is a Worker secret.
    (name = "SETTINGS_KEY", text = "c3RlbGxhLWNvbm5lY3QtbG9jYWwtZGV2LWtleS0wMDE="),
    (name = "SETTINGS_KEY_PREVIOUS", fromEnvironment = "SETTINGS_KEY_PREVIOUS"),
    (name = "RETRY_BASE_MS", fromEnvironment = "RETRY_BASE_MS"),
    (name = "LEASE_MS", fromEnvironment = "LEASE_MS"),
    (name = "CACHE_MS", fromEnvironment = "CACHE_MS"),
    (name = "RETENTION_DAYS", fromEnvironment = "RETENTION_DAYS"),
    (name = "KEY_CHECKS_PER_MINUTE", fromEnvironment = "KEY_CHECKS_PER_MINUTE"),
    (name = "LOG_READS_PER_KEY_PER_MINUTE", fromEnvironment = "LOG_READS_PER_KEY_PER_MINUTE"),
    (name = "LOG_READS_PER_ORG_PER_MINUTE", fromEnvironment = "LOG_READS_PER_ORG_PER_MINUTE"),
    (name = "OUTCOME_POLL_MS", fromEnvironment = "OUTCOME_POLL_MS"),
    (name = "FORGET_SWEEP_MS", fromEnvironment = "FORGET_SWEEP_MS"),
    (name = "SUBREQUESTS_PER_INVOCATION", fromEnvironment = "SUBREQUESTS_PER_INVOCATION"),
    (name = "PERSONAL_DATA_DAYS", fromEnvironment = "PERSONAL_DATA_DAYS"),
    (name = "STORAGE_CEILING_BYTES", fromEnvironment = "STORAGE_CEILING_BYTES"),
  ],
  globalOutbound = "loopback",
);

const kustomer :Workerd.Worker = (
  modules = Modules.kustomer,
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [(className = "KustomerState", uniqueKey = "stella-connect-kustomer-sandbox", enableSql = true)],
  durableObjectStorage = (localDisk = "state"),
  bindings = [
    (name = "STATE", durableObjectNamespace = "KustomerState"),
    (name = "EDGE", service = "edge"),
    # The org's API budget, `limit/windowSeconds`; unset: Kustomer's Enterprise 1000/60.
    (name = "KUSTOMER_BUDGET", fromEnvironment = "KUSTOMER_BUDGET"),
  ],
);

const stella :Workerd.Worker = (
  modules = Modules.stella,
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [(className = "StellaState", uniqueKey = "stella-connect-stella-sandbox", enableSql = true)],
  durableObjectStorage = (localDisk = "state"),
  bindings = [(name = "STATE", durableObjectNamespace = "StellaState")],
);
