#!/usr/bin/env bash
# Builds the DocC documentation of every library product (swift-docc-plugin) and fails when docc
# printed a warning (a broken ``symbol`` link, an unresolved article, ...). Usage: scripts/docs.sh
# The archives go to .build/plugins/Swift-DocC/outputs/<Target>.doccarchive (printed at the end);
# preview one with `swift package --disable-sandbox preview-documentation --target Distri`.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(Distri DistriClient DistriStorage DistriServer DistriCore DistriWire DistriImaging DistriIdentity DistriPeer)
args=()
for target in "${targets[@]}"; do args+=(--target "$target"); done
log=$(mktemp /tmp/distri-docs.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
swift package generate-documentation "${args[@]}" 2>&1 | tee "$log" || status=$?
if [ "$status" -ne 0 ]; then
  echo "docs: swift package generate-documentation failed (exit $status)" >&2
  exit "$status"
fi
# SwiftPM's "found N file(s) which are unhandled" warnings name a dependency's file on the next line
# (.build/checkouts): those are theirs; every other warning fails.
if awk '/which are unhandled/ { pending = $0; next }
        pending != "" { if ($0 !~ /\/.build\/checkouts\//) print pending; pending = "" }
        /warning:/ && !/\/.build\/checkouts\// { print }' "$log" | grep -q .; then
  echo "docs: docc printed warnings (see above)" >&2
  exit 1
fi
echo "docs: no warnings; archives in $(pwd)/.build/plugins/Swift-DocC/outputs/"
