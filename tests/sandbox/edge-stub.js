// Stand-in for the edge in the sandbox smoke tests: records what the Kustomer sandbox posts
// (in memory; one isolate serves every request) and shows it at GET /edge-stub/received.
const received = [];

export default {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (request.method === "GET" && pathname === "/edge-stub/received") return Response.json({ received });
    if (request.method === "POST" && pathname === "/edge-stub/reset") {
      received.length = 0;
      return Response.json({ received });
    }
    const text = await request.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {}
    received.push({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers), body });
    return Response.json({ accepted: true, stub: true }, { status: 202 });
  },
};
