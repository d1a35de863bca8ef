// The main job until the edge lands: runs the shipped Wasm package on the shared Kustomer
// fixtures and prints what the app would do. Thin on purpose: every rule lives in Rust.
import { existsSync, readFileSync } from "node:fs";
import { initSync, buildSurveyRequest, planConversationEvent, validateSettings } from "../pkg/stella_connect.js";

const root = new URL("..", import.meta.url);
initSync({ module: readFileSync(new URL("pkg/stella_connect_bg.wasm", root)) });

const shared = new URL("../shared/fixtures/kustomer/", root);
const dir = existsSync(shared) ? shared : new URL("tests/fixtures/kustomer/", root);
const load = (name) => JSON.parse(readFileSync(new URL(`${name}.json`, dir), "utf8"));
const show = (title, value) => console.log(`\n== ${title}\n${JSON.stringify(value, null, 2)}`);

// Example settings as an admin would fill them in (the key values are placeholders).
const settings = {
  stellaApiKey: "demo-stella-key",
  kustomerApiKey: "demo-kustomer-key",
  kustomerApiUrl: "https://api.kustomerapp.com",
  kustomerUrl: "https://acme.kustomerapp.com",
  secondsUntilSend: "86400",
};
const conversation = load("conversation");
const input = { settings, conversation, customer: load("customer"), user: load("user"), tags: load("tags") };

console.log(`fixtures: ${dir.pathname}`);
show("settings, validated (keys masked)", validateSettings(settings));
show("close event → plan", planConversationEvent(settings, load("conversation-update-done")));
show("Stella request at send time", buildSurveyRequest(input));

const unassigned = structuredClone(conversation);
unassigned.data.attributes.assignedUsers = [];
show("the same conversation without an assignee", buildSurveyRequest({ ...input, conversation: unassigned, user: null }));
