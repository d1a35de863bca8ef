# The profiler's workerd (scripts/profile/profile.mjs): the local stack of sandbox/workerd.capnp
# plus an `edge` socket serving the edge worker directly, as Cloudflare does. The edge is the
# profiling build (build/profile/: wasm-pack --profiling keeps the Rust function names), with
# the bindings of sandbox/workerd.capnp; a `baseline` socket serves the bench's JavaScript
# baseline (scripts/bench/baseline.js), profiled the same way for comparison, and a `floor`
# socket the runtime's share of a close alone (floor.js: no logic).
using Workerd = import "/workerd/workerd.capnp";
using Local = import "../../sandbox/workerd.capnp";
using Bench = import "../bench/bench.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = Local.router),
    (name = "edge", worker = .edge),
    (name = "kustomer-sandbox", worker = Local.kustomer),
    (name = "stella-sandbox", worker = Local.stella),
    (name = "loopback", network = (allow = ["local", "private"])),
    (name = "state", disk = (path = "/tmp/stella-profile-state", writable = true)),
    (name = "site", disk = (path = "../../build/site")),
    (name = "baseline", worker = Bench.baseline),
    (name = "floor", worker = .floor),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
    (name = "edge", address = "127.0.0.1:8788", http = (), service = "edge"),
    (name = "baseline", address = "127.0.0.1:8790", http = (), service = "baseline"),
    (name = "floor", address = "127.0.0.1:8791", http = (), service = "floor"),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    (name = "edge.js", esModule = embed "../../build/profile/edge.js"),
    (name = "stella_connect.js", esModule = embed "../../build/profile/stella_connect.js"),
    (name = "stella_connect_bg.wasm", wasm = embed "../../build/profile/stella_connect_bg.wasm"),
  ],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [
    (className = "OrgScheduler", uniqueKey = "stella-connect-org-scheduler", enableSql = true),
    (className = "RateLimiter", uniqueKey = "stella-connect-rate-limiter", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "state"),
  bindings = [
    (name = "SCHEDULER", durableObjectNamespace = "OrgScheduler"),
    (name = "LIMITER", durableObjectNamespace = "RateLimiter"),
    (name = "ALLOW_LOOPBACK", text = "true"),
    (name = "SETTINGS_KEY", text = "c3RlbGxhLWNvbm5lY3QtbG9jYWwtZGV2LWtleS0wMDE="),
  ],
  globalOutbound = "loopback",
);

const floor :Workerd.Worker = (
  modules = [(name = "floor.js", esModule = embed "floor.js")],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [(className = "Floor", uniqueKey = "stella-connect-profile-floor", enableSql = true)],
  durableObjectStorage = (localDisk = "state"),
  bindings = [(name = "FLOOR", durableObjectNamespace = "Floor")],
);
