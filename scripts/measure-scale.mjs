// Scale measurement: N closed conversations (default 10,000), all due at the same instant,
// scheduled through the real edge in workerd; reports how long scheduling took, workerd's peak
// memory, how late the last survey was sent, and whether each was sent exactly once.
//   node scripts/measure-scale.mjs [N] [delaySeconds]
import { readFileSync } from "node:fs";
import { Stack, sleep, waitFor } from "../tests/http/harness.mjs";

const n = Number(process.argv[2] ?? 10_000);
const delay = Number(process.argv[3] ?? 60);
const stack = await new Stack().start();
const peakRssMb = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${stack.proc.pid}/status`, "utf8"))[1]) / 1024;

try {
  await stack.request("POST", "/sandbox/kustomer/reset");
  await stack.request("POST", "/sandbox/stella/reset");
  const seed = (await stack.conversation("conv-email")).data;
  const closedAt = new Date().toISOString();
  const ids = Array.from({ length: n }, (_, i) => `conv-scale-${i}`);
  const conversation = (id) => ({
    ...seed,
    id,
    attributes: { ...seed.attributes, status: "done", updatedAt: closedAt, modificationHistory: { statusAt: closedAt } },
  });
  for (let i = 0; i < n; i += 1000) {
    const sets = ids.slice(i, i + 1000).map((id) => ({ conversation: conversation(id), customer: undefined }));
    const r = await stack.request("POST", "/sandbox/kustomer/conversations", { body: sets });
    if (r.status !== 201) throw new Error(r.text);
  }
  const headers = stack.settingsHeaders({ "x-seconds-until-send": String(delay) });
  const started = Date.now();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const id = ids[next++];
      const event = {
        name: "kustomer.conversation.update", org: "sandbox-org", createdAt: closedAt, data: conversation(id),
        changes: { attributes: { status: { before: "open", after: "done" } } },
      };
      const r = await stack.postEvent(event, headers);
      if (r.status !== 202) throw new Error(`${id}: ${r.text}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  const scheduledIn = (Date.now() - started) / 1000;
  const dueAt = Date.parse(closedAt) + delay * 1000;
  if (Date.now() >= dueAt) console.warn("warning: scheduling took longer than the delay; raise delaySeconds");
  console.log(`scheduled ${n} in ${scheduledIn.toFixed(1)} s; peak RSS so far ${peakRssMb().toFixed(0)} MB; due at ${new Date(dueAt).toISOString()}`);
  stack.log.length = 0; // the log is for the tests' secret scan; keep memory flat here

  const requests = await waitFor(async () => {
    const { body } = await stack.request("GET", "/sandbox/stella/requests");
    stack.log.length = 0;
    return body.requests.length >= n && body.requests;
  }, (delay + 900) * 1000, `${n} surveys`, 3000);
  await sleep(2000);
  const { body } = await stack.request("GET", "/sandbox/stella/requests");
  const unique = new Set(body.requests.map((r) => r.body.ext_interaction_id));
  const lateness = requests.map((r) => Date.parse(r.receivedAt) - dueAt);
  lateness.sort((a, b) => a - b);
  const q = (p) => (lateness[Math.min(lateness.length - 1, Math.floor(p * lateness.length))] / 1000).toFixed(2);
  console.log(JSON.stringify({
    jobs: n, scheduledSeconds: scheduledIn, requests: body.requests.length, unique: unique.size,
    exactlyOnce: body.requests.length === n && unique.size === n,
    latenessSeconds: { p50: q(0.5), p99: q(0.99), max: q(1) }, peakRssMb: Math.round(peakRssMb()),
  }));
} finally {
  await stack.stop();
}
