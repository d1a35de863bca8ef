# Every recipe here is what the README, CI and developers run: nothing is typed by hand.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
# The project's own tools first: wasm-opt from npm `binaryen`, the wasm-bindgen CLI from cargo.
export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
# Where wasm-bindgen-test finds Debian's driver (never a download).
export CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: setup build run test test-rust test-wasm test-js lint size clean

## Install everything the project needs (idempotent; seconds when warm).
setup:
	scripts/setup.sh

## Build the Wasm package in pkg/ (--target web: loads in browsers, workerd and node).
build: setup
	wasm-pack build --target web --release --out-dir pkg --no-pack
	scripts/size.sh

## The main job: the Stella request the shared fixtures produce, and a skip reason.
run: build
	node scripts/demo.mjs

## Every test: lint, host tests, Wasm in node and Chromium, the package's JS API, the size.
test: setup lint test-rust test-wasm build test-js

lint:
	cargo fmt --check
	cargo clippy --all-targets --locked -- -D warnings
	cargo clippy --all-targets --locked --target wasm32-unknown-unknown -- -D warnings

test-rust:
	cargo test --locked

test-wasm:
	wasm-pack test --node
	WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome

test-js:
	node --test tests/js/

size:
	scripts/size.sh

clean:
	cargo clean
	rm -rf pkg
