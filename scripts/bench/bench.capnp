# The benchmark's workerd: the local stack of sandbox/workerd.capnp (the same services, the same
# embedded edge modules from build/worker/), plus two sockets: `edge` serves the edge worker
# directly (as Cloudflare does, without the local router) and `noop` a Worker that only answers
# "ok" — the baseline for what workerd itself costs per request. Started by scripts/bench/run.mjs
# with --socket-addr for all three sockets and --directory-path for `state` and `site`.
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
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
    (name = "edge", address = "127.0.0.1:8788", http = (), service = "edge"),
    (name = "noop", address = "127.0.0.1:8789", http = (), service = "noop"),
  ],
);

const noop :Workerd.Worker = (
  modules = [(name = "noop.js", esModule = embed "noop.js")],
  compatibilityDate = "2026-11-01",
);
