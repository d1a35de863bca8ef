# Runs the Kustomer and Stella sandboxes alone, for tests/sandbox/sandbox.test.mjs (and by hand).
# Build the Stella schema first (node scripts/build-stella-schema.mjs), then:
#   node_modules/.bin/workerd serve sandbox/test-config.capnp \
#     --socket-addr http=127.0.0.1:8790 --directory-path sandbox-state=<a writable dir>
# One socket; tests/sandbox/router.js stands in for the real config's router (/sandbox/kustomer/...,
# /sandbox/stella/..., and /edge-stub/... for tests/sandbox/edge-stub.js, which records what
# close/reopen send to the edge).
using Workerd = import "/workerd/workerd.capnp";
using Modules = import "modules.capnp";

const config :Workerd.Config = (
  services = [
    (name = "router", worker = .router),
    (name = "kustomer", worker = .kustomer),
    (name = "stella", worker = .stella),
    (name = "edge", worker = .edgeStub),
    # Durable Object storage; the path is meant to be overridden with --directory-path.
    (name = "sandbox-state", disk = (path = "/tmp/stella-kustomer-sandbox-state", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8790", http = (), service = "router")],
);

const router :Workerd.Worker = (
  compatibilityDate = "2026-11-01",
  modules = [(name = "router.js", esModule = embed "../tests/sandbox/router.js")],
  bindings = [
    (name = "KUSTOMER", service = "kustomer"),
    (name = "STELLA", service = "stella"),
    (name = "EDGE", service = "edge"),
  ],
);

const kustomer :Workerd.Worker = (
  compatibilityDate = "2026-11-01",
  modules = Modules.kustomer,
  durableObjectNamespaces = [(className = "KustomerState", uniqueKey = "sandbox-kustomer-state", enableSql = true)],
  durableObjectStorage = (localDisk = "sandbox-state"),
  bindings = [
    (name = "STATE", durableObjectNamespace = "KustomerState"),
    (name = "EDGE", service = "edge"),
    # The org's API budget, `limit/windowSeconds`; unset: Kustomer's Enterprise 1000/60.
    (name = "KUSTOMER_BUDGET", fromEnvironment = "KUSTOMER_BUDGET"),
  ],
);

const stella :Workerd.Worker = (
  compatibilityDate = "2026-11-01",
  modules = Modules.stella,
  durableObjectNamespaces = [(className = "StellaState", uniqueKey = "sandbox-stella-state", enableSql = true)],
  durableObjectStorage = (localDisk = "sandbox-state"),
  bindings = [(name = "STATE", durableObjectNamespace = "StellaState")],
);

const edgeStub :Workerd.Worker = (
  compatibilityDate = "2026-11-01",
  modules = [(name = "edge-stub.js", esModule = embed "../tests/sandbox/edge-stub.js")],
);
