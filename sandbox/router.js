// Local development only: one address for everything. /sandbox/kustomer/* and
// /sandbox/stella/* go to the sandboxes, /www/* to the static pages, the rest to the edge.
export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith("/sandbox/kustomer/")) return env.KUSTOMER.fetch(request);
    if (pathname.startsWith("/sandbox/stella/")) return env.STELLA.fetch(request);
    if (pathname === "/") {
      return new Response(
        "Stella Connect for Kustomer, local run.\n" +
          "Edge:             POST /v1/kustomer/conversation-closed, GET /v1/deliveries, POST /v1/preview\n" +
          "Kustomer sandbox: /sandbox/kustomer/v1/..., POST /sandbox/kustomer/conversations/{id}/close\n" +
          "Stella sandbox:   GET /sandbox/stella/requests\n",
        { headers: { "content-type": "text/plain; charset=utf-8" } },
      );
    }
    return env.EDGE.fetch(request);
  },
};
