// Stand-in for Kustomer's Cards SDK: local development only, served by the Kustomer sandbox
// and loaded by the pages only when they run on a loopback address (see www/app.js).
// Same method names as the real SDK (initialize, on, request, command.run, resize, updateStatus);
// requests go to the Kustomer sandbox as the signed-in user, and so do command runs, which the
// sandbox carries out as Kustomer does (settings filled in on its side). The context comes from the page's query:
// `?conversation=<id>` for the agent card: the conversation as stored (its `brand`, and its
// `custom` attributes with the outcomes the edge wrote), and its customer.
(() => {
  const API = "/sandbox/kustomer";
  const SESSION = "sandbox-user-session"; // the signed-in user's session, not an app key
  const listeners = new Map();
  let initialized = false;

  async function call(url, method = "GET", body) {
    const response = await fetch(API + url, {
      method,
      headers: { authorization: `Bearer ${SESSION}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await response.json().catch(() => null);
    if (!response.ok) throw { status: response.status, body: data };
    return data;
  }

  async function context() {
    const id = new URLSearchParams(location.search).get("conversation");
    if (!id) return { type: "settings" };
    const conversation = (await call(`/v1/conversations/${encodeURIComponent(id)}`)).data;
    const customerId = conversation.relationships?.customer?.data?.id;
    const customer = customerId ? (await call(`/v1/customers/${encodeURIComponent(customerId)}`)).data : undefined;
    return { type: "conversation", conversation, customer };
  }

  // What tests and the local home page read and drive.
  const standIn = {
    resizes: 0,
    height: 0,
    statuses: [],
    /** Reads the conversation again and sends it to `on('context')` listeners, as Kustomer
     * does when the conversation changes. */
    async refresh() {
      const ctx = await context();
      for (const callback of listeners.get("context") ?? []) callback(ctx);
    },
  };

  window.KustomerStandIn = standIn;
  window.Kustomer = {
    initialize(callback) {
      if (initialized) throw new Error("Kustomer.initialize must be called exactly once.");
      initialized = true;
      context().then(
        (ctx) => callback(ctx, {}),
        (e) => console.warn("Cards SDK stand-in: no context", e),
      );
    },
    on(event, callback) {
      listeners.set(event, [...(listeners.get(event) ?? []), callback]);
    },
    request({ url, method = "GET", body }, callback) {
      call(url, method, body).then(
        (data) => callback(null, data),
        (error) => callback(error),
      );
    },
    command: {
      /** Runs one of the app's commands: resolves to (and calls back with) the run's answer,
       * `{commandId, args, url, statusCode, responseBody, requestError}`. */
      run(name, { args, headers, body } = {}, callback) {
        const run = call(`/v1/commands/${encodeURIComponent(name)}/run`, "POST", { args, headers, body }).then((doc) => doc.data.attributes);
        if (callback) run.then((answer) => callback(null, answer), (error) => callback(error));
        return run;
      },
    },
    resize() {
      standIn.resizes++;
      standIn.height = document.documentElement.scrollHeight;
    },
    updateStatus(level, text) {
      standIn.statuses.push({ level, text });
    },
  };
})();
