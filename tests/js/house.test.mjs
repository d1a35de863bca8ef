// The house's size rules (issue 21), checked on every `make test`: no file in src/ over 600
// lines and no Rust function over 80, from its `fn` to its closing brace. Long files and long
// functions are where the back wing had become hard to change; this keeps them from growing
// back. The reader below skips comments, strings and char literals, so braces in them don't
// count; it needs no Rust parser because only the brace depth and the `fn` names matter.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../../src/", import.meta.url));
const MAX_FILE_LINES = 600;
const MAX_FN_LINES = 80;

function rustFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? rustFiles(join(dir, e.name)) : e.name.endsWith(".rs") ? [join(dir, e.name)] : [],
  );
}

/** Each function of `text` as `{name, line, lines}`: its first line and its length in lines. */
export function functions(text) {
  const found = [];
  const open = []; // per `{`: the function it opens, if any
  let pending = null;
  let nest = 0; // open `(` and `[`
  let line = 1;
  const ident = (i) => /[A-Za-z0-9_]/.test(text[i - 1] ?? "");
  for (let i = 0; i < text.length; ) {
    const rest = text.slice(i, i + 120);
    let m;
    if (text[i] === "\n") {
      line++;
      i++;
    } else if (rest.startsWith("//")) {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (rest.startsWith("/*")) {
      const end = text.indexOf("*/", i) + 2;
      line += count(text.slice(i, end));
      i = end;
    } else if (!ident(i) && (m = /^b?r(#*)"/.exec(rest))) {
      const end = text.indexOf(`"${m[1]}`, i + m[0].length) + 1 + m[1].length;
      line += count(text.slice(i, end));
      i = end;
    } else if (text[i] === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      line += count(text.slice(i, j));
      i = j + 1;
    } else if (text[i] === "'" && (m = /^'(\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'])'/.exec(rest))) {
      i += m[0].length; // a char literal; a lone `'` is a lifetime
    } else if (!ident(i) && (m = /^fn\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(rest))) {
      pending = { name: m[1], line };
      i += m[0].length;
    } else {
      if ("([".includes(text[i])) nest++;
      if (")]".includes(text[i])) nest--;
      if (text[i] === ";" && nest === 0) pending = null; // a bodiless `fn` (`[u8; 4]` is nested)
      if (text[i] === "{") {
        open.push(pending);
        pending = null;
      } else if (text[i] === "}") {
        const f = open.pop();
        if (f) found.push({ ...f, lines: line - f.line + 1 });
      }
      i++;
    }
  }
  return found;
}

const count = (s) => s.split("\n").length - 1;

const files = rustFiles(SRC).map((path) => ({ path: path.slice(SRC.length), text: readFileSync(path, "utf8") }));

test("the reader finds functions and ignores braces in strings, chars and comments", () => {
  const text = 'fn a() {\n  let s = "}{";\n  let c = \'}\';\n  // }\n}\ntrait T { fn b(&self); }\nfn c<\'x>(v: &\'x str, _: [u8; 2]) -> &\'x str {\n  r#"{"#;\n  v\n}\n';
  assert.deepEqual(
    functions(text).map((f) => [f.name, f.line, f.lines]),
    [["a", 1, 5], ["c", 7, 4]],
  );
});

test(`no file in src/ is over ${MAX_FILE_LINES} lines`, () => {
  const long = files.map((f) => [f.path, count(f.text)]).filter(([, n]) => n > MAX_FILE_LINES);
  assert.deepEqual(long, []);
});

test(`no function in src/ is over ${MAX_FN_LINES} lines`, () => {
  const long = files.flatMap((f) =>
    functions(f.text).filter((fn) => fn.lines > MAX_FN_LINES).map((fn) => `${f.path}:${fn.line} ${fn.name} (${fn.lines})`),
  );
  assert.deepEqual(long, []);
});
