// The built package as JavaScript sees it: export names, TypeScript types, plain objects.
// The rules themselves are tested in Rust (tests/*.rs) and under Wasm (tests/wasm.rs).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as core from "../../pkg/stella_connect.js";

const pkg = new URL("../../pkg/", import.meta.url);
const fixtures = new URL("../fixtures/kustomer/", import.meta.url);
const load = (name) => JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), "utf8"));
core.initSync({ module: readFileSync(new URL("stella_connect_bg.wasm", pkg)) });

const settings = { stellaApiKey: "k1", kustomerApiKey: "k2", kustomerUrl: "https://acme.kustomerapp.com" };

test("the exports exist under their camelCase names", () => {
  for (const name of ["validateSettings", "planConversationEvent", "buildSurveyRequest", "explainConversation", "recordsToRead", "settingsFields"]) {
    assert.equal(typeof core[name], "function", name);
  }
});

test("the .d.ts declares typed signatures, not any", () => {
  const dts = readFileSync(new URL("stella_connect.d.ts", pkg), "utf8");
  assert.match(dts, /export function validateSettings\(raw: RawSettings \| string, options_: CoreOptions \| undefined\): ValidateSettingsResult;/);
  assert.match(dts, /export function planConversationEvent\(raw_settings: RawSettings \| string, event: unknown, options_: CoreOptions \| undefined\): PlanResult;/);
  assert.match(dts, /export function buildSurveyRequest\(input: SurveyInput \| string\): BuildResult;/);
  assert.match(dts, /export function explainConversation\(input: SurveyInput \| string\): ExplainResult;/);
  assert.match(dts, /export function recordsToRead\(conversation: unknown\): RecordsResult;/);
  assert.match(dts, /export function settingsFields\(\): FieldDef\[\];/);
  assert.match(dts, /export type BuildResult = /);
});

test("results are plain JSON objects", () => {
  const out = core.validateSettings(settings);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(out.settings.surveyedChannels, []);
  assert.equal(out.settings.stellaApiKey, "********");
});

test("the fixtures build the expected request; the key is masked", () => {
  const out = core.buildSurveyRequest({
    settings, conversation: load("conversation"), customer: load("customer"), user: load("user"), tags: load("tags"),
  });
  assert.equal(out.ok, true);
  const conversationId = load("conversation").data.id; // every request carries it; the org only when given
  assert.deepEqual(out.request.body, { ...load("expected-stella-request"), custom_properties: { kustomer_conversation_id: conversationId } });
  assert.equal(out.request.headers["x-api-key"], "********");
  assert.ok(!JSON.stringify(out).includes("k1"));
});

test("optional arguments may be left out", () => {
  assert.equal(core.planConversationEvent(settings, load("conversation-update-done")).action, "schedule");
  assert.equal(core.validateSettings({ ...settings, kustomerUrl: "http://127.0.0.1:1" }, { allowLoopback: true }).ok, true);
});

test("settingsFields gives the form its fields, in order, with the header each travels in", () => {
  const fields = core.settingsFields();
  assert.deepEqual(fields.slice(0, 6).map((f) => [f.key, f.label, f.header]), [
    ["stellaApiKey", "Stella Connect API key", "x-stella-api-key"],
    ["stellaApiSecret", "Stella Connect API secret", "x-stella-api-secret"],
    ["kustomerApiKey", "Kustomer API key", "x-kustomer-api-key"],
    ["kustomerApiUrl", "Kustomer API URL", "x-kustomer-api-url"],
    ["kustomerUrl", "Kustomer URL", "x-kustomer-url"],
    ["secondsUntilSend", "Seconds until send", "x-seconds-until-send"],
  ]);
  assert.equal(fields.find((f) => f.key === "secondsUntilSend").default, "86400");
  assert.ok(fields.slice(6).every((f) => f.advanced));
  assert.equal(Object.getPrototypeOf(fields[0]), Object.prototype);
});

test("explainConversation answers with a plain card object", () => {
  const result = core.explainConversation({
    settings,
    conversation: load("conversation"),
    customer: load("customer"),
    user: load("user"),
    tags: load("tags"),
  });
  assert.equal(result.ok, true);
  assert.equal(Object.getPrototypeOf(result.card), Object.prototype);
  assert.equal(result.card.survey.customerEmail, load("expected-stella-request").customer.email);
  assert.deepEqual(core.explainConversation("{").error.code, "malformed_json");
});

test("recordsToRead names the records the card reads: the agent, the tags, the customer", () => {
  const conversation = load("conversation");
  const result = core.recordsToRead(conversation);
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.deepEqual(result, {
    ok: true,
    customer: conversation.data.relationships.customer.data.id,
    agent: conversation.data.attributes.assignedUsers[0],
    tags: conversation.data.attributes.tags,
    brand: conversation.data.relationships.brand.data.id,
    channel: "email",
    paths: {
      user: `/v1/users/${conversation.data.attributes.assignedUsers[0]}`,
      tags: `/v1/tags/${conversation.data.attributes.tags.join(",")}`,
      brand: `/v1/brands/${conversation.data.relationships.brand.data.id}`,
    },
  });
  conversation.data.attributes.assignedUsers = ["", "u2"];
  conversation.data.attributes.tags = ["", "t1", ""];
  conversation.data.attributes.channels = [" ", "chat"];
  delete conversation.data.relationships;
  assert.deepEqual(core.recordsToRead(JSON.stringify(conversation)), {
    ok: true, agent: "u2", tags: ["t1"], brand: null, channel: "chat", paths: { user: "/v1/users/u2", tags: "/v1/tags/t1" },
  });
  assert.equal(core.recordsToRead({ data: { id: 1 } }).error.code, "invalid_shape");
  assert.equal(core.recordsToRead("{").error.code, "malformed_json");
});

test("pageModel carries the mask, what each page command needs and leaves out, and each kind's saved type", () => {
  const dts = readFileSync(new URL("stella_connect.d.ts", pkg), "utf8");
  assert.match(dts, /export function pageModel\(\): PageModel;/);
  const model = core.pageModel();
  assert.equal(Object.getPrototypeOf(model), Object.prototype);
  assert.equal(model.mask, core.validateSettings(settings).settings.stellaApiKey);
  assert.deepEqual(model.commands.preview, { needs: ["kustomerApiKey"], leavesOut: ["appSecret", "stellaApiSecret"] });
  assert.deepEqual(model.commands["check-connection"].needs, ["stellaApiKey", "kustomerApiKey"]);
  for (const field of core.settingsFields()) assert.ok(model.savedTypes[field.kind], field.kind);
  assert.equal(model.savedTypes.integer, "number");
});

test("readSurveyOutcome reads a Data Return record into a plain, typed outcome", () => {
  assert.equal(typeof core.readSurveyOutcome, "function");
  const dts = readFileSync(new URL("stella_connect.d.ts", pkg), "utf8");
  assert.match(dts, /export function readSurveyOutcome\(record: unknown\): OutcomeResult;/);
  const record = {
    uuid: "u1", ext_interaction_id: "6560e0f1a2b3c4d5e6f70819", request_delivery_status: "Not sent: suppression period",
    request_created_at: "2026-11-21T09:03:12-05:00", unknown_field: [1],
  };
  const out = core.readSurveyOutcome(record);
  assert.equal(Object.getPrototypeOf(out), Object.prototype);
  assert.deepEqual(out, { ok: true, outcome: { conversationId: "6560e0f1a2b3c4d5e6f70819", uuid: "u1", deliveryStatus: "suppressed", isRecovery: false } });
  assert.deepEqual(core.readSurveyOutcome(JSON.stringify(record)), out);
  assert.equal(core.readSurveyOutcome({ uuid: "u1" }).error.path, "ext_interaction_id");
  assert.equal(core.readSurveyOutcome("{").error.code, "malformed_json");
});
