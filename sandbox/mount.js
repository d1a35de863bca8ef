// What both sandboxes' workers share: all of a sandbox's state lives in one Durable Object (so it
// survives a workerd restart), mounted under a prefix of the one local address.

/** The worker: every request goes to the sandbox's one Durable Object (the STATE binding). */
export const toState = {
  fetch(request, env) {
    return env.STATE.get(env.STATE.idFromName("sandbox")).fetch(request);
  },
};

/** The path below the mount point: the shared router forwards the full URL. */
export const below = (prefix, url) => (url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) || "/" : url.pathname);
