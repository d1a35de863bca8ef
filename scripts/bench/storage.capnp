# The storage part's workerd: one SQLite-backed Durable Object (scripts/bench/storage-do.js) that
# creates the edge's tables from the DDL it is given, writes the rows it is given and answers
# `ctx.storage.sql.databaseSize`: the bytes Cloudflare counts against an object's 10 GB. Started
# by scripts/bench/storage.mjs with --socket-addr http=… and --directory-path state=….
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "storage", worker = .storage),
    (name = "state", disk = (path = "/tmp/stella-bench-storage", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:8791", http = (), service = "storage")],
);

const storage :Workerd.Worker = (
  modules = [(name = "storage-do.js", esModule = embed "storage-do.js")],
  compatibilityDate = "2026-11-01",
  durableObjectNamespaces = [(className = "Rows", uniqueKey = "stella-connect-bench-storage", enableSql = true)],
  durableObjectStorage = (localDisk = "state"),
  bindings = [(name = "ROWS", durableObjectNamespace = "Rows")],
);
