// CSV as RFC 4180 writes it, safe to open in a spreadsheet in any locale: the Deliveries page's
// export. Apart from the page so that node tests it without a browser.

/** One field. Text a spreadsheet would run as a formula (a leading `=`, `+`, `-`, `@`, tab or
 * CR) starts with an apostrophe; it is quoted, as is any field holding a quote, a line break
 * or a list separator (`,`, or `;` where a locale's spreadsheet splits on it), so that no
 * locale cuts a field into a formula of its own (`x;=1+1`). */
export function csvField(value) {
  let text = value === undefined || value === null ? "" : String(value);
  const formula = /^[=+\-@\t\r]/.test(text);
  if (formula) text = `'${text}`;
  return formula || /[",;\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** Rows of cells as CSV text, CRLF line ends. */
export function csvText(rows) {
  return `${rows.map((cells) => cells.map(csvField).join(",")).join("\r\n")}\r\n`;
}
