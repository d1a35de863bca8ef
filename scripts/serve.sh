#!/usr/bin/env bash
# Starts workerd with the edge, the Kustomer and Stella sandboxes and the pages on 127.0.0.1,
# and registers the app package with the Kustomer sandbox.
# PORT (default 8787) picks the port, STATE_DIR (default .local/state) keeps the Durable
# Objects' storage, so pending surveys survive a restart. Expects `make build` to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-8787}
state=${STATE_DIR:-.local/state}
mkdir -p "$state"
cat <<TXT
Stella Connect for Kustomer is starting. Open http://127.0.0.1:$port/ to fill in the settings,
close a conversation and watch its survey arrive.
  edge:              POST http://127.0.0.1:$port/v1/kustomer/conversation-closed
                     GET  http://127.0.0.1:$port/v1/deliveries   (headers x-kustomer-api-key, x-kustomer-api-url and
                                                                   x-app-secret: the Kustomer sandbox's key, URL and app
                                                                   secret, see the README)
  pages:             http://127.0.0.1:$port/app/settings.html, /app/deliveries.html,
                     /app/card.html?conversation=conv-email
  Kustomer sandbox:  POST http://127.0.0.1:$port/sandbox/kustomer/conversations/conv-email/close
  Stella sandbox:    GET  http://127.0.0.1:$port/sandbox/stella/requests
  A closed conversation's survey arrives in the Stella sandbox after "Seconds until send" (5 s here).
  Answer it with the home page's "Answer the survey": the rating reaches the conversation and
  its card within about ten seconds (outcomes are read back every ${OUTCOME_POLL_MS:-10000} ms here;
  every 5 minutes in production).
  State is kept in $state; Ctrl-C stops.
TXT
# Survey outcomes are read back every 10 s locally (production: 5 minutes): each read makes
# about two Data Return calls, so about 13 a minute, which leaves the roster (the card's
# "will Agent Connect survey this agent?") its share of the org's Agent Connect minute
# (tests/edge_outcomes.rs `the_local_poll_leaves_the_roster_its_share`).
# The other bindings come from the environment as they are (sandbox/workerd.capnp), e.g.
# SUBREQUESTS_PER_INVOCATION=50 for the Free plan's cap on a run's outbound calls.
OUTCOME_POLL_MS=${OUTCOME_POLL_MS:-10000} SUBREQUESTS_PER_INVOCATION=${SUBREQUESTS_PER_INVOCATION:-} node_modules/.bin/workerd serve sandbox/workerd.capnp \
  --socket-addr "http=127.0.0.1:$port" --directory-path "state=$(realpath "$state")" \
  --directory-path "site=$(realpath build/site)" &
workerd=$!
trap 'kill "$workerd" 2>/dev/null' INT TERM

# Registers this package with the Kustomer sandbox, as an admin does with `make register`, but
# generated for this address, so that the installed app's pages, card and action are the local
# ones. REGISTER=0 skips it.
if [ "${REGISTER:-1}" = 1 ]; then
  for _ in $(seq 300); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  manifest="$state/app-manifest.json"
  if cargo run --quiet --locked --bin app-manifest -- print --edge-url "http://127.0.0.1:$port" > "$manifest"; then
    PORT=$port node scripts/register.mjs --file "$manifest" || true
  fi
fi
wait "$workerd"
