# The sandboxes' modules, shared by workerd.capnp (`make run`, the bench, the profiler) and
# test-config.capnp (the sandbox tests). The first module of each list is the worker's main one;
# the others are imported by name, relative to it (`./api.js` from `kustomer/index.js`).
using Workerd = import "/workerd/workerd.capnp";

const kustomer :List(Workerd.Worker.Module) = [
  (name = "kustomer/index.js", esModule = embed "kustomer/index.js"),
  (name = "kustomer/api.js", esModule = embed "kustomer/api.js"),
  (name = "kustomer/apps.js", esModule = embed "kustomer/apps.js"),
  (name = "kustomer/budget.js", esModule = embed "kustomer/budget.js"),
  (name = "kustomer/commands.js", esModule = embed "kustomer/commands.js"),
  (name = "kustomer/controls.js", esModule = embed "kustomer/controls.js"),
  (name = "kustomer/conversations.js", esModule = embed "kustomer/conversations.js"),
  (name = "kustomer/http.js", esModule = embed "kustomer/http.js"),
  (name = "kustomer/resources.js", esModule = embed "kustomer/resources.js"),
  (name = "kustomer/settings.js", esModule = embed "kustomer/settings.js"),
  (name = "kustomer/store.js", esModule = embed "kustomer/store.js"),
  (name = "kustomer/workflows.js", esModule = embed "kustomer/workflows.js"),
  (name = "kustomer/seed.js", esModule = embed "kustomer/seed.js"),
  (name = "mount.js", esModule = embed "mount.js"),
  (name = "kustomer/cards-sdk-source", text = embed "kustomer/cards-sdk.js"),
  # The app definition generated from the settings table: the sandbox's workflow sends the
  # headers its action names.
  (name = "kustomer/app-definition", json = embed "../app-manifest/stella_connect.json"),
];

const stella :List(Workerd.Worker.Module) = [
  (name = "stella/index.js", esModule = embed "stella/index.js"),
  (name = "stella/common.js", esModule = embed "stella/common.js"),
  (name = "stella/controls.js", esModule = embed "stella/controls.js"),
  (name = "stella/reads.js", esModule = embed "stella/reads.js"),
  (name = "stella/requests.js", esModule = embed "stella/requests.js"),
  (name = "stella/roster.js", esModule = embed "stella/roster.js"),
  (name = "mount.js", esModule = embed "mount.js"),
  # The vendor's request schema, compiled by scripts/build-stella-schema.mjs (`make build`).
  (name = "stella/schema.mjs", esModule = embed "../build/stella-schema.mjs"),
];
