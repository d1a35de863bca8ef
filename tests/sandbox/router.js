// Stand-in for the real config's router in the sandbox smoke tests: one socket, requests
// forwarded unchanged (full URL kept) by path prefix.
export default {
  fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname.startsWith("/sandbox/kustomer/")) return env.KUSTOMER.fetch(request);
    if (pathname.startsWith("/sandbox/stella/")) return env.STELLA.fetch(request);
    if (pathname.startsWith("/edge-stub/")) return env.EDGE.fetch(request);
    return new Response("Not Found", { status: 404 });
  },
};
