# Every recipe here is what the README, CI and developers run: nothing is typed by hand.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# The project's own tools first: wasm-opt from npm `binaryen`, the wasm-bindgen CLI from cargo.
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# Where wasm-bindgen-test finds Debian's driver (never a download).
export CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: setup build run serve test test-rust test-wasm test-js test-edge test-browser lint size clean demo manifest register deploy bench bench-smoke

## Install everything the project needs (idempotent; seconds when warm).
setup:
	scripts/setup.sh

## Build the Wasm packages (--target web: loads in browsers, workerd and node): pkg/ for the
## pages (smallest), pkg-edge/ for the worker (with the `edge` feature, fastest: the `edge`
## profile); the pages' site (build/site: www/ and pkg/, served under /app/); and the Stella
## sandbox's schema. Each output is a file target with its real inputs, so a second build with
## nothing changed runs nothing, a change under www/ copies only the site or the worker, and a
## change under src/ rebuilds only the packages that compile it (src/wasm/edge/ is the edge's).
build: build/.worker-built build/.site-built build/stella-schema.mjs

# The sources each package compiles (src/bin/ is host tools only).
RUST_SRC := Cargo.toml Cargo.lock $(shell find src -name '*.rs' -not -path 'src/bin/*')
PAGES_SRC := $(filter-out src/wasm/edge/%,$(RUST_SRC))
SITE_FILES := $(addprefix www/,card.html deliveries.html settings.html app.js settings.js card.js deliveries.js csv.js app.css icon.svg)
# A recipe that fails leaves no output behind (the size check included), so the next build
# runs it again instead of trusting a half-made file.
.DELETE_ON_ERROR:

pkg/stella_connect_bg.wasm: $(PAGES_SRC) scripts/size.sh | setup
	wasm-pack build --target web --release --out-dir pkg --no-pack
	scripts/size.sh

pkg-edge/stella_connect_bg.wasm: $(RUST_SRC) | setup
	wasm-pack build --target web --profile edge --out-dir pkg-edge --no-pack -- --features edge

build/.worker-built: www/edge.js pkg-edge/stella_connect_bg.wasm
	mkdir -p build/worker && cp www/edge.js pkg-edge/stella_connect.js pkg-edge/stella_connect_bg.wasm build/worker/
	touch $@

build/.site-built: $(SITE_FILES) www/_headers pkg/stella_connect_bg.wasm
	rm -rf build/site && mkdir -p build/site/app/pkg
	cp $(SITE_FILES) build/site/app/
	cp www/_headers build/site/ && cp pkg/stella_connect.js pkg/stella_connect_bg.wasm build/site/app/pkg/
	touch $@

build/stella-schema.mjs: scripts/build-stella-schema.mjs contracts/stella-requests-openapi.yml | setup
	node scripts/build-stella-schema.mjs

## The main job: workerd on 127.0.0.1:$${PORT:-8787} with the edge, the sandboxes and the pages.
run: build
	scripts/serve.sh

## The core alone on the shared fixtures: the Stella request they produce, and a skip reason.
demo: build
	node scripts/demo.mjs

## Every test: lint, host tests, Wasm in node and Chromium, the packages' JS API, the edge
## and the sandboxes in a real workerd, and the pages in Chromium.
test: setup lint test-rust test-wasm build test-js test-edge test-browser bench-smoke

lint:
	cargo fmt --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy --all-targets --locked --target wasm32-unknown-unknown -- -D warnings
	cargo clippy --all-targets --locked --target wasm32-unknown-unknown --features edge -- -D warnings

test-rust:
	cargo test --locked

test-wasm:
	wasm-pack test --node
	WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome

test-js:
	node --test tests/js/

test-edge:
	node --test --test-concurrency=1 tests/sandbox/ tests/http/ tests/drills/

## The settings page, the agent card and the local home page in Debian's Chromium (Playwright),
## against the whole local stack; writes build/screenshots/.
test-browser:
	node --test --test-concurrency=1 tests/browser/

## The same, refreshing the screenshots the README and docs/ show (docs/screenshots/).
.PHONY: screenshots
screenshots: build
	SCREENSHOTS_DIR=docs/screenshots node --test --test-concurrency=1 tests/browser/pages.test.mjs tests/browser/deliveries.test.mjs

size:
	scripts/size.sh

## Fault drills against the real edge in workerd (scripts/drills.mjs): Stella failing for a while,
## Kustomer 429s with x-ratelimit-reset, workerd killed 3–5 times with 1,000 surveys pending, each
## event delivered three times out of order, hostile input beside real closes, and 2,000 surveys
## due at once within half of the org's Kustomer API budget, then again with closes arriving during
## the drain and Kustomer's answers read late. Each ends with exactly one Stella
## request per eligible conversation and none lost; exits 1 otherwise (about 13 minutes).
## DRILL_SCALE=0.1 for a small run.
.PHONY: drills
drills: build
	node scripts/drills.mjs

## Where the edge's close path spends its time: the worker's `edge` build with its functions'
## names (build/profile/: wasm-bindgen without wasm-opt), the V8 sampling profiler on its isolate under autocannon; prints req/s,
## workerd CPU per request and the split between Rust, the JS glue and workerd's built-ins.
.PHONY: profile
profile: build
	cargo build --locked --lib --profile edge --target wasm32-unknown-unknown --features edge
	wasm-bindgen --target web --out-dir build/profile $${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/edge/stella_connect.wasm
	cp www/edge.js build/profile/
	node --experimental-websocket scripts/profile/profile.mjs $${SECONDS_PER_RUN:-5}

## Benchmarks: the core natively and through Wasm, the edge against a no-op Worker (autocannon),
## Kustomer calls per survey, size and cold start, and BENCH_SCALE (10000) jobs due at once.
## Prints a table and writes BENCHMARKS.md (about 10 minutes; see docs/testing.md, "Benchmarks").
bench: build
	node scripts/bench/run.mjs

## The same script with tiny sizes: checks that it runs and the invariants hold (exactly once,
## at most 2 Kustomer calls per survey), never timings; writes build/bench-smoke.md.
bench-smoke: build
	BENCH_SMOKE=1 node scripts/bench/run.mjs

## Deploys the edge to Cloudflare Workers (docs/going-live.md) with the wrangler package.json
## pins, after `make build`, once the Worker has its SETTINGS_KEY secret (else it refuses and
## prints the one-time command); keeps the deployed address in build/deploy/edge-url.
## DRY_RUN=1 bundles what `make build` last built into build/deploy/bundle/ and deploys nothing
## (offline: no metrics, no update check).
deploy: $(if $(filter 1,$(DRY_RUN)),,build)
	scripts/deploy.sh

## The Kustomer app definition, generated from the settings table, in app-manifest/stella_connect.json
## (MANIFEST=path for another file): for EDGE_URL=https://… (the edge's address alone), else for
## the address `make deploy` kept, else for the placeholder, which is the checked-in one (see
## app-manifest/README.md).
manifest:
	scripts/deploy.sh manifest

## Registers app-manifest/stella_connect.json with Kustomer after the platform check: the local
## sandbox of `make run` by default, or KUSTOMER_API_URL=https://<org>.api.kustomerapp.com with
## KUSTOMER_API_KEY (org.admin.apps) from the environment, which refuses a definition for the
## placeholder edge (exit 2: make deploy, then make manifest). MANIFEST=path for another file.
register:
	node scripts/register.mjs

## Coverage-guided fuzzing of the settings, event, record and Data Return record parsers (cargo-fuzz,
## nightly): RUNS=… executions per target (100000), FUZZ_TARGETS="settings event records outcome".
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

clean:
	cargo clean
	rm -rf pkg pkg-edge build .local
