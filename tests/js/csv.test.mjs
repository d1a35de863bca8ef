// The Deliveries page's CSV export (www/csv.js): fields that a spreadsheet in any locale would
// split or run as a formula are quoted and neutralized.
import { test } from "node:test";
import assert from "node:assert/strict";
import { csvField, csvText } from "../../www/csv.js";

test("a field with a separator, a quote, a line break or a leading formula character is quoted", () => {
  const cases = [
    ["plain", "plain"],
    ["x;=1+1", '"x;=1+1"'], // `;` is the list separator in many locales
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["two\r\nlines", '"two\r\nlines"'],
    ["line\nfeed", '"line\nfeed"'],
    ["=1+1", `"'=1+1"`],
    ["+1", `"'+1"`],
    ["-1", `"'-1"`],
    ["@SUM(A1)", `"'@SUM(A1)"`],
    ["\t=1", `"'\t=1"`],
    ["\r=1", `"'\r=1"`],
    ['=HYPERLINK("http://evil.example")', `"'=HYPERLINK(""http://evil.example"")"`],
    [3, "3"],
    [null, ""],
    [undefined, ""],
  ];
  for (const [value, field] of cases) assert.equal(csvField(value), field, JSON.stringify(value));
});

test("rows become CRLF-ended records", () => {
  assert.equal(csvText([["a", "b;c"], ["=x", 1]]), `a,"b;c"\r\n"'=x",1\r\n`);
});
