#!/usr/bin/env bash
# Prints the shipped module's size, raw and gzipped, and fails above the ceiling.
# Budget: 150 KB raw. Ceiling: the size measured when the core landed plus a little, so that
# growth is a decision, never an accident (see docs/architecture.md, "Size").
set -euo pipefail
cd "$(dirname "$0")/.."
wasm=pkg/stella_connect_bg.wasm
ceiling=$((238 * 1024))
raw=$(stat -c %s "$wasm")
gz=$(gzip -9c "$wasm" | wc -c)
printf 'size: %s raw %d bytes (%.1f KB), gzipped %d bytes (%.1f KB); ceiling %d KB\n' \
  "$wasm" "$raw" "$(echo "$raw/1024" | bc -l)" "$gz" "$(echo "$gz/1024" | bc -l)" $((ceiling / 1024))
if [ "$raw" -gt "$ceiling" ]; then
  echo "size: $wasm is over the ceiling" >&2
  exit 1
fi
