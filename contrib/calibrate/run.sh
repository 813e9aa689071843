#!/usr/bin/env bash
# Re-measures the clustering calibration (docs/CLUSTERING.md, src/cluster/calibration.rs):
# `chaintrace eval clusters` on the real Bitcoin Core world A and on 50,000-transaction
# simulated worlds of the default and adversarial presets (seed 7), then writes the tables.
#   contrib/calibrate/run.sh [CHAINTRACE_BINARY]    (from the project's root)
set -euo pipefail
B=${1:-target/release/chaintrace}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
A=../shared/datasets/bitcoin/regtest-world-a
"$B" --quiet ingest bitcoin --blocks-dir "$A/blocks" --data "$W/a" >/dev/null
"$B" --quiet --json eval clusters --data "$W/a" --truth "$A/ground_truth/addresses.csv" > "$W/a.json"
for p in default adversarial; do
  "$B" --quiet simulate --txs 50000 --seed 7 --preset $p --out "$W/sim-$p" >/dev/null
  "$B" --quiet ingest bitcoin --blocks-dir "$W/sim-$p/blocks" --data "$W/d-$p" >/dev/null
  "$B" --quiet --json eval clusters --data "$W/d-$p" --truth "$W/sim-$p/truth" > "$W/$p.json"
done
python3 contrib/calibrate/generate.py "$W/a.json" "$W/default.json" "$W/adversarial.json" "$(date -u +%Y-%m-%d)"
