# The benchmark's workerd: the local stack of sandbox/workerd.capnp (the same services, the same
# embedded edge modules from build/worker/), plus three sockets: `edge` serves the edge worker
# directly (as Cloudflare does, without the local router), `baseline` the same endpoint written
# in plain JavaScript (scripts/bench/baseline.js: what the edge is measured against), and `noop`
# a Worker that only answers "ok" — what workerd itself costs per request. Started by
# scripts/bench/run.mjs with --socket-addr for all four sockets and --directory-path for `state`
# and `site`.
using Workerd = import "/workerd/workerd.capnp";
using Local = import "../../sandbox/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = Local.router),
    (name = "edge", worker = Local.edge),
    (name = "kustomer-sandbox", worker = Local.kustomer),
    (name = "stella-sandbox", worker = Local.stella),
    (name = "loopback", network = (allow = ["local", "private"])),
    (name = "state", disk = (path = "/tmp/stella-bench-state", writable = true)),
    (name = "site", disk = (path = "../../build/site")),
    (name = "noop", worker = .noop),
    (name = "baseline", worker = .baseline),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
    (name = "edge", address = "127.0.0.1:8788", http = (), service = "edge"),
    (name = "noop", address = "127.0.0.1:8789", http = (), service = "noop"),
    (name = "baseline", address = "127.0.0.1:8790", http = (), service = "baseline"),
  ],
);

const noop :Workerd.Worker = (
  modules = [(name = "noop.js", esModule = embed "noop.js")],
  compatibilityDate = "2026-11-01",
);

# The JavaScript baseline: the edge's close endpoint written the way a competent engineer would,
# with the edge's bindings (the same development key) and its storage on the same `state` disk.
const baseline :Workerd.Worker = (
  modules = [(name = "baseline.js", esModule = embed "baseline.js")],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [
    (className = "BaselineScheduler", uniqueKey = "stella-connect-bench-baseline", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "state"),
  bindings = [
    (name = "BASELINE_SCHEDULER", durableObjectNamespace = "BaselineScheduler"),
    (name = "ALLOW_LOOPBACK", text = "true"),
    (name = "SETTINGS_KEY", text = "c3RlbGxhLWNvbm5lY3QtbG9jYWwtZGV2LWtleS0wMDE="),
  ],
  globalOutbound = "loopback",
);
