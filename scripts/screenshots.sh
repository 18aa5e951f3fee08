#!/usr/bin/env bash
# Takes the pictures in docs/ again: the CLI's HTML report (report-desktop.png,
# report-phone.png), the results explorer in the page (explorer.png), the page
# mid-run (page-desktop.png, page-phone.png) and after a whole run (screenshot.png),
# and the compare view of two runs (compare-view.png, compare-view-phone.png).
# The shipped example is copied to a neutral folder first, so the report's header
# shows /tmp/shadow-batch-example/training-data/labels.csv, not this checkout's path.
# The tests never write these (scripts/test.sh leaves a clean clone unmodified).
# Needs Chromium (/usr/bin/chromium or $CHROMIUM) and web/node_modules (cd web && npm ci).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

example=/tmp/shadow-batch-example
rm -rf "$example"
mkdir -p "$example"
cp -r training-data "$example/"
export SHADOW_CSV="$example/training-data/labels.csv"

cargo build -q -p shadow-native
bash web/build.sh
node scripts/explorer-screenshots.mjs docs
node scripts/compare-screenshots.mjs docs
(cd web && node tests/screenshots.mjs ../docs)
echo "docs/*.png taken again from $SHADOW_CSV: look at each before committing"
