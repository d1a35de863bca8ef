# workerd with nothing but the no-op Worker (scripts/bench/noop.js): the baseline for the cold
# start, started by scripts/bench/run.mjs with --socket-addr http=… (state and site are unused).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "noop", worker = .noop)],
  sockets = [(name = "http", address = "127.0.0.1:8789", http = (), service = "noop")],
);

const noop :Workerd.Worker = (
  modules = [(name = "noop.js", esModule = embed "noop.js")],
  compatibilityDate = "2026-11-01",
);
