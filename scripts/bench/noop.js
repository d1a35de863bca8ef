// The baseline for the edge's throughput: a Worker that does nothing but answer.
export default {
  fetch() {
    return new Response("ok");
  },
};
