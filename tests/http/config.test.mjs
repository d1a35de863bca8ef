// The edge's configuration over HTTP against a real workerd, each case on its own stack: the
// bindings left unset (production's retry and lease defaults, production's limit on key checks)
// and bindings that are not positive whole numbers, which stop workerd at start.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KUSTOMER_KEY, Stack, sleep, waitFor } from "./harness.mjs";

/** Runs `fn` with a started stack (env over the test defaults), stopping it afterwards. */
async function withStack(env, fn) {
  const stack = new Stack({ env });
  try {
    await stack.start();
    return await fn(stack);
  } finally {
    await stack.stop();
  }
}

test("a binding that is not a positive whole number stops workerd at start, naming it", async () => {
  const cases = [
    ["LEASE_MS", "0"],
    ["RETRY_BASE_MS", "-5"],
    ["KEY_CHECKS_PER_MINUTE", "ten"],
    ["CACHE_MS", "1.5"],
  ];
  for (const [name, value] of cases) {
    const stack = new Stack({ env: { [name]: value, REGISTER: "0" } });
    try {
      const proc = await stack.run();
      // Whichever comes first: workerd exits, or it answers (which it must not).
      await waitFor(async () => proc.exitCode !== null || (await fetch(`${stack.base}/healthz`).catch(() => null))?.ok, 15_000, "workerd to exit or answer");
      assert.notEqual(proc.exitCode, null, `workerd started with ${name}=${value}`);
      const code = await stack.exited; // its output is complete now
      const log = stack.log.join("");
      assert.notEqual(code, 0, `${name}=${value}: exit code`);
      assert.ok(log.includes(`${name} must be a positive whole number, not ${JSON.stringify(value)}`), `${name}=${value}:\n${log.slice(-1500)}`);
    } finally {
      await stack.stop();
    }
  }
});

test("RETRY_BASE_MS and LEASE_MS unset: a Kustomer 503 is retried with production's backoff, not at once", async () => {
  await withStack({ RETRY_BASE_MS: null, LEASE_MS: null }, async (stack) => {
    const id = `conv-backoff-${Date.now()}`;
    const seed = (await stack.conversation("conv-email")).data;
    const add = await stack.request("POST", "/sandbox/kustomer/conversations", { body: { conversation: { ...seed, id, attributes: { ...seed.attributes, status: "open" } } } });
    assert.equal(add.status, 201, add.text);
    await stack.setDelay(2);
    const closed = await stack.close(id); // the edge learns the key's org now, and keeps it
    assert.equal(closed.body.edge.status, 202, JSON.stringify(closed.body.edge));
    // From now on every Kustomer call fails with 503 (no Retry-After).
    const faults = await stack.request("POST", "/sandbox/kustomer/faults", { body: { status: 503, count: 1000 } });
    assert.equal(faults.status, 200, faults.text);

    const retrying = await waitFor(async () => {
      const d = await stack.delivery(id);
      return d?.state === "retrying" && d;
    }, 20_000, `${id} retrying`);
    assert.equal(retrying.attempts, 1, JSON.stringify(retrying));
    assert.match(retrying.message, /503/, JSON.stringify(retrying));
    const wait = Date.parse(retrying.nextAttemptAt) - Date.parse(retrying.updatedAt);
    // Production's base is 30 s with equal jitter: the next attempt is 15–30 s away.
    assert.ok(wait >= 15_000 && wait <= 30_000, `next attempt ${wait} ms after the failure`);

    // And nothing reads the conversation meanwhile: the count holds still over a couple of
    // seconds. (Only the survey's own route: the app's registration with the sandbox, which
    // serve.sh makes beside the tests, calls Kustomer too.)
    const reads = async () => (await stack.kustomerStats()).byRoute["GET /v1/conversations/:id"] ?? 0;
    const before = await reads();
    await sleep(2000);
    assert.equal(await reads(), before, `no conversation read while the retry waits: ${JSON.stringify(retrying)}`);
    const still = await stack.delivery(id);
    assert.deepEqual([still.state, still.attempts, still.nextAttemptAt], ["retrying", 1, retrying.nextAttemptAt]);
    await stack.request("DELETE", "/sandbox/kustomer/faults");
  });
});

test("KEY_CHECKS_PER_MINUTE unset (5): a burst of key checks is cut off with 429 and Retry-After; Stella sees at most 5 probes", async () => {
  await withStack({ KEY_CHECKS_PER_MINUTE: null }, async (stack) => {
    const stellaAttempts = async () => (await stack.stellaLog()).attempts;
    const check = (headers) => stack.request("POST", "/v1/settings/check", { headers: stack.settingsHeaders({ "x-app-secret": null, ...headers }) });

    // A Kustomer key that Kustomer does not know: Stella is never asked.
    const before = await stellaAttempts();
    const unknown = await check({ "x-kustomer-api-key": "guessed-kustomer-key-1", "x-stella-api-key": "guessed-stella-key-1" });
    assert.equal(unknown.status, 200, unknown.text);
    assert.deepEqual([unknown.body.kustomer.code, unknown.body.stella.code], ["kustomer_key_rejected", "not_checked"]);
    assert.equal(await stellaAttempts(), before, "no probe reached Stella");

    // 20 checks with the org's Kustomer key and a different Stella key each.
    const answers = [];
    for (let i = 0; i < 20; i++) answers.push(await check({ "x-kustomer-api-key": KUSTOMER_KEY, "x-stella-api-key": `guessed-stella-key-${i}` }));
    assert.deepEqual(answers.map((a) => a.status), [...Array(5).fill(200), ...Array(15).fill(429)]);
    for (const a of answers.slice(0, 5)) assert.deepEqual([a.body.kustomer.code, a.body.stella.code], ["ok", "stella_key_rejected"]);
    for (const a of answers.slice(5)) {
      assert.equal(a.body.error.code, "rate_limited");
      const retryAfter = Number(a.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${a.headers.get("retry-after")}`);
    }
    const probes = (await stellaAttempts()) - before;
    assert.ok(probes <= 5, `Stella received ${probes} probes`);
    assert.equal(probes, 5, "each of the five allowed checks probed Stella once");
    // A preview with the same Kustomer key counts against the same limit.
    const preview = await stack.request("POST", "/v1/preview", { headers: stack.settingsHeaders(), body: { conversationId: "conv-email" } });
    assert.deepEqual([preview.status, preview.body.error?.code], [429, "rate_limited"], preview.text);

    // Per client address, where the platform names it (cf-connecting-ip): fresh keys each time
    // do not get round it.
    const address = { "cf-connecting-ip": "203.0.113.9" };
    const fromOne = [];
    for (let i = 0; i < 6; i++) fromOne.push((await check({ ...address, "x-kustomer-api-key": `guess-k-${i}`, "x-stella-api-key": `guess-s-${i}` })).status);
    assert.deepEqual(fromOne, [200, 200, 200, 200, 200, 429]);
    const elsewhere = await check({ "cf-connecting-ip": "203.0.113.10", "x-kustomer-api-key": "guess-k-x", "x-stella-api-key": "guess-s-x" });
    assert.equal(elsewhere.status, 200, "another address has its own count");
  });
});

test("LOG_READS_PER_*_PER_MINUTE unset (60 a key, 120 an org): log reads past them get 429 with Retry-After", async () => {
  await withStack({ LOG_READS_PER_KEY_PER_MINUTE: null, LOG_READS_PER_ORG_PER_MINUTE: null }, async (stack) => {
    const read = async (key) => (await stack.request("GET", "/v1/deliveries?limit=1", { headers: stack.orgHeaders({ "x-kustomer-api-key": key }) }));
    const burst = async (key, n) => {
      const statuses = [];
      for (let i = 0; i < n; i++) statuses.push((await read(key)).status);
      return statuses;
    };
    // Any user of the org, through the app's command: one key's 60, then the org's 120.
    const one = await burst(KUSTOMER_KEY, 61);
    assert.deepEqual(one, [...Array(60).fill(200), 429]);
    const refused = await read(KUSTOMER_KEY);
    assert.equal(refused.body.error.code, "rate_limited");
    const retryAfter = Number(refused.headers.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${refused.headers.get("retry-after")}`);
    const [another, third] = ["sandbox-kustomer-key-no-tags", "sandbox-kustomer-key-agent"];
    assert.deepEqual(await burst(another, 60), Array(60).fill(200), "another key: its own 60, the org's 61st to 120th");
    assert.deepEqual(await burst(third, 1), [429], "the org's 121st");
    // The agent card's reads (one conversation, through the org's saved key) count apart.
    const card = await stack.request("GET", "/v1/deliveries?conversationId=conv-email&limit=1", { headers: stack.orgHeaders() });
    assert.equal(card.status, 200, card.text);
    // Another org counts apart.
    assert.notEqual((await read("other-org-key")).status, 429);
  });
});
