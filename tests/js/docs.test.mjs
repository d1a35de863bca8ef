// The README and the documents under docs/ link to each other's sections: every relative link
// must reach a file that exists and, with a `#fragment`, a heading of that file with GitHub's
// anchor for it. Moving a section then breaks a test instead of a reader's click.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DOCS = ["README.md", ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`)];

/** The text outside fenced code blocks and code spans, where a link is a link. */
function prose(text) {
  return text.replace(/^```[\s\S]*?^```/gm, "").replace(/`[^`\n]*`/g, "");
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
export function anchor(heading) {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, "")
    .replace(/ /g, "-");
}

/** The anchors of a markdown file's headings (outside code blocks). */
function anchors(file) {
  const text = readFileSync(file, "utf8").replace(/^```[\s\S]*?^```/gm, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchor(m[1])));
}

test("GitHub's anchors for this repository's kinds of heading", () => {
  assert.equal(anchor("Trust model: who may do what"), "trust-model-who-may-do-what");
  assert.equal(anchor("The edge (workerd, Cloudflare Workers)"), "the-edge-workerd-cloudflare-workers");
  assert.equal(anchor("Cloudflare's cap on one invocation's calls"), "cloudflares-cap-on-one-invocations-calls");
  assert.equal(anchor("Measured (this machine: 2 cores, workerd 2026-11-17)"), "measured-this-machine-2-cores-workerd-2026-11-17");
});

for (const doc of DOCS) {
  test(`${doc}: every relative link reaches its file and heading`, () => {
    const from = join(ROOT, doc);
    const links = [...prose(readFileSync(from, "utf8")).matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    const broken = [];
    for (const link of links) {
      if (/^[a-z]+:/i.test(link)) continue; // https:, mailto:
      const [path, fragment] = link.split("#");
      const target = path ? join(dirname(from), path) : from;
      if (!existsSync(target)) {
        broken.push(`${link}: no file ${relative(ROOT, target)}`);
      } else if (fragment !== undefined && target.endsWith(".md") && !anchors(target).has(fragment)) {
        broken.push(`${link}: no heading #${fragment} in ${relative(ROOT, target)}`);
      }
    }
    assert.deepEqual(broken, []);
  });
}
