"""The query of `chaintrace stats flows` in DuckDB over the same Parquet files.

usage: python3 benches/stats_duckdb.py DATA NETWORK CATEGORIES
Prints one JSON line: seconds, peak memory (MiB) of this process, and the totals (received,
payments, sent, transfers) that must equal chaintrace's.
"""
import json
import resource
import sys
import time

import duckdb

data, net, cats = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
chain = f"{data}/{net}"
started = time.time()
con = duckdb.connect()
cat_list = ",".join(f"'{c}'" for c in cats)
con.execute(f"""
CREATE TEMP VIEW tags AS
  SELECT address, arg_min(entity, entity) AS entity, arg_min(category, entity) AS category
  FROM '{data}/labels/tags.parquet' WHERE chain = 'bitcoin' AND is_public GROUP BY address;
CREATE TEMP VIEW ent AS SELECT * FROM tags WHERE category IN ({cat_list});
CREATE TEMP TABLE funded AS
  SELECT DISTINCT i.txid, e.entity FROM '{chain}/inputs/*.parquet' i JOIN ent e USING (address);
""")
inflows = con.execute(f"""
WITH payer AS (SELECT txid, address AS payer FROM '{chain}/inputs/*.parquet' WHERE vin = 0 AND address IS NOT NULL),
rec AS (
  SELECT o.height, o.txid, o.value, e.entity, e.category
  FROM '{chain}/outputs/*.parquet' o JOIN ent e USING (address)
  ANTI JOIN funded f ON f.txid = o.txid AND f.entity = e.entity)
SELECT date_trunc('month', b.time) AS period, r.entity, r.category,
       coalesce(t.category, 'unlabelled') AS from_category,
       sum(r.value) AS received, count(*) AS payments, count(DISTINCT p.payer) AS payers
FROM rec r LEFT JOIN payer p USING (txid) LEFT JOIN tags t ON t.address = p.payer
JOIN (SELECT height, time FROM '{chain}/blocks/*.parquet') b USING (height)
GROUP BY ALL ORDER BY ALL
""").fetchall()
outflows = con.execute(f"""
WITH n_in AS (SELECT txid, count(*) AS n FROM '{chain}/inputs/*.parquet' WHERE address IS NOT NULL GROUP BY txid),
k_in AS (
  SELECT i.txid, e.entity, count(*) AS k FROM '{chain}/inputs/*.parquet' i JOIN ent e USING (address) GROUP BY ALL),
alone AS (SELECT txid, entity FROM k_in JOIN n_in USING (txid) WHERE k = n)
SELECT date_trunc('month', b.time) AS period, f.entity, coalesce(t.category, 'unlabelled') AS to_category,
       sum(o.value) AS sent, count(*) AS transfers
FROM '{chain}/outputs/*.parquet' o JOIN alone f USING (txid)
LEFT JOIN tags t ON t.address = o.address
JOIN (SELECT height, time FROM '{chain}/blocks/*.parquet') b USING (height)
WHERE o.address IS NOT NULL AND (t.entity IS NULL OR t.entity <> f.entity)
GROUP BY ALL ORDER BY ALL
""").fetchall()
secs = time.time() - started
print(json.dumps({
    "seconds": secs,
    "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "received": sum(r[4] for r in inflows),
    "payments": sum(r[5] for r in inflows),
    "sent": sum(r[3] for r in outflows),
    "transfers": sum(r[4] for r in outflows),
    "rows": [len(inflows), len(outflows)],
}))
