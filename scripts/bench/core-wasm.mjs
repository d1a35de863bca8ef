// The core's cost per closed conversation through Wasm in node: `planConversationEvent` on the
// fixture close event plus `buildSurveyRequest` on the fixtures, the inputs as plain objects
// (what the pages and the edge pass), from the built pkg/ (`make build`). The counterpart of
// examples/bench_core.rs; scripts/bench/run.mjs runs both and takes the ratio.
//   node scripts/bench/core-wasm.mjs [rounds] [iterations]   → one JSON line, µs per event
import { readFileSync } from "node:fs";
import * as core from "../../pkg/stella_connect.js";

const rounds = Number(process.argv[2] ?? 15);
const iterations = Number(process.argv[3] ?? 5_000);
const fixtures = new URL("../../tests/fixtures/kustomer/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), "utf8"));
core.initSync({ module: readFileSync(new URL("../../pkg/stella_connect_bg.wasm", import.meta.url)) });

// The same settings and inputs as examples/bench_core.rs.
const settings = {
  stellaApiKey: "stella-test-key-0123",
  kustomerApiKey: "kustomer-key-4567",
  kustomerApiUrl: "https://api.kustomerapp.com",
  kustomerUrl: "https://acme.kustomerapp.com/",
  secondsUntilSend: "86400",
};
const event = load("conversation-update-done");
const input = { settings, conversation: load("conversation"), customer: load("customer"), user: load("user"), tags: load("tags") };

let sink = 0;
function one() {
  const planned = core.planConversationEvent(settings, event);
  const built = core.buildSurveyRequest(input);
  sink += planned.action.length + (built.ok ? 1 : 0);
}
{
  const planned = core.planConversationEvent(settings, event);
  const built = core.buildSurveyRequest(input);
  if (planned.action !== "schedule" || built.ok !== true) {
    throw new Error(`the fixtures must schedule and build a request: ${JSON.stringify({ planned, built })}`);
  }
}

for (let i = 0; i < Math.min(iterations, 1000); i++) one(); // warm-up: JIT, Wasm tiering
const times = [];
for (let r = 0; r < rounds; r++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) one();
  times.push(Number(process.hrtime.bigint() - start) / 1e3 / iterations);
}
const sorted = [...times].sort((a, b) => a - b);
console.log(JSON.stringify({
  rounds, iterations, node: process.version, sink,
  usPerEvent: { median: sorted[Math.floor(sorted.length / 2)], min: sorted[0], max: sorted.at(-1), rounds: sorted },
}));
