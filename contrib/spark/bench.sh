#!/usr/bin/env bash
# Measures chaintrace and the Spark path (local mode) on the same simulated world, and checks
# that they agree: the figures of contrib/spark/README.md.
#
#   contrib/spark/bench.sh TXS [WORKDIR]
#
# Simulates a TXS-transaction world over 2025 (default preset, seed 7), ingests it, imports
# the truth's exchanges, vendor, ransomware crew and mixer as labels, then times (wall
# seconds and peak RSS from /usr/bin/time):
#   1. chaintrace cluster bitcoin --heuristics multi-input, index built first (a fresh run),
#   2. the same with the index already built,
#   3. chaintrace stats flows --by month --category illicit_vendor,ransomware,
#   4. spark-submit --master local[N] chaintrace_spark.py --cluster ... --flows ... (both
#      jobs, one session),
# and compares the two (representatives and monthly flows). Environment: CHAINTRACE (the
# binary; default: chaintrace on PATH), SPARK_MASTER (default local[2]), SPARK_DRIVER_MEMORY
# (default 4g: in local mode the executors run in the driver's JVM), SPARK_PARTITIONS
# (spark.sql.shuffle.partitions, default 8: Spark's 200 suits a cluster, not 2 cores).
set -euo pipefail

txs=${1:?usage: bench.sh TXS [WORKDIR]}
work=${2:-/tmp/chaintrace-spark-bench-$txs}
ct=${CHAINTRACE:-chaintrace}
here=$(cd "$(dirname "$0")" && pwd)
master=${SPARK_MASTER:-local[2]}
mem=${SPARK_DRIVER_MEMORY:-4g}
mkdir -p "$work"

# /usr/bin/time's elapsed seconds and peak RSS (KiB), appended to $work/times.txt.
timed() {
  local name=$1
  shift
  /usr/bin/time -f "$name %e s %M KiB" -a -o "$work/times.txt" "$@"
}

if [ ! -f "$work/data/regtest/_manifest.json" ]; then
  "$ct" simulate --quiet --seed 7 --txs "$txs" --preset default \
    --start 2025-01-01 --end 2025-12-31 --out "$work/world"
  "$ct" ingest bitcoin --quiet --blocks-dir "$work/world/blocks" --data "$work/data"
  python3 - "$work" <<'EOF'
import sys, polars as pl
w = sys.argv[1]
a = pl.read_parquet(f"{w}/world/truth/addresses.parquet").filter(
    pl.col("category").is_in(["exchange", "mixer", "illicit_vendor", "ransomware"]))
a.select("address", pl.col("entity").alias("label"), "category",
         pl.col("entity").alias("actor")).write_csv(f"{w}/labels.csv")
EOF
  "$ct" labels import --quiet "$work/labels.csv" --data "$work/data"
fi
: > "$work/times.txt"
rm -rf "$work/data/regtest/index" "$work/data/clusters"
du -sb "$work/data/regtest" | awk '{printf "dataset %.0f MB\n", $1/1e6}' >> "$work/times.txt"

timed chaintrace-cluster-with-index-build "$ct" --json -q cluster bitcoin --data "$work/data" \
  --heuristics multi-input > "$work/cluster.json"
timed chaintrace-cluster-index-built "$ct" --json -q cluster bitcoin --data "$work/data" \
  --heuristics multi-input > "$work/cluster.json"
timed chaintrace-stats-flows "$ct" --json -q stats flows --data "$work/data" --out "$work/stats" \
  --by month --category illicit_vendor,ransomware > "$work/flows.json"
timed spark-local "${SPARK_SUBMIT:-spark-submit}" --master "$master" --driver-memory "$mem" \
  --conf spark.ui.enabled=false --conf "spark.sql.shuffle.partitions=${SPARK_PARTITIONS:-8}" \
  "$here/chaintrace_spark.py" --data "$work/data/regtest" \
  --cluster "$work/spark/address_cluster" --flows "$work/spark/flows" \
  --category illicit_vendor,ransomware > "$work/spark.json" 2> "$work/spark.log"

python3 - "$work" <<'EOF'
import json, sys, polars as pl
w = sys.argv[1]
ours = pl.read_parquet(f"{w}/data/clusters/regtest/address_cluster.parquet").with_row_index("id")
reps = ours.select(pl.col("id").alias("cluster_id"), pl.col("address").alias("expected"))
ours = ours.join(reps, on="cluster_id").select("address", "expected")
theirs = pl.read_parquet(f"{w}/spark/address_cluster/*.parquet").select("address", "representative")
both = ours.join(theirs, on="address", how="full", coalesce=True)
bad = both.filter(pl.col("expected").is_null() | pl.col("representative").is_null()
                  | (pl.col("expected") != pl.col("representative"))).height
flows, spark = json.load(open(f"{w}/flows.json")), json.load(open(f"{w}/spark.json"))
same = all(flows[t] == spark["flows"][t] for t in ("inflows", "outflows"))
print(f"addresses {len(ours)}, representatives differing {bad}; flows equal: {same}")
print("spark:", json.dumps({k: spark["cluster"][k] for k in ("rounds", "timings", "elapsed_secs")}),
      "flows", spark["flows"]["elapsed_secs"], "s")
sys.exit(0 if bad == 0 and same else 1)
EOF
cat "$work/times.txt"
