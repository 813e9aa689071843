"""Runs graphsense-clustering (PyPI `graphsense-clustering`, a Rust union-find) on the
multi-input sets that `cargo bench --bench cluster` exported, and prints its time, peak
memory and a fingerprint of the partition so the bench can check both agree.

Usage: python3 benches/graphsense_compare.py SETS.parquet MAX_ADDRESS_ID
Needs: pip install graphsense-clustering pyarrow
"""
import hashlib
import sys
import time

import pyarrow.parquet as pq
import gs_clustering

path, max_id = sys.argv[1], int(sys.argv[2])
sets = pq.read_table(path).column("inputs").combine_chunks()
t = time.perf_counter()
c = gs_clustering.Clustering(max_id)
c.process_transactions_arrow(sets)
mapping = c.get_mapping_min(True)
secs = time.perf_counter() - t
# Fingerprint: (address id, cluster id) rows of non-singleton clusters, ascending.
def raw_u32(col):
    # The little-endian uint32 values, straight from the Arrow buffer (no numpy needed).
    data = col.buffers()[1]
    return data.to_pybytes()[col.offset * 4 : (col.offset + len(col)) * 4]


ids, cl = mapping.column(0), mapping.column(1)
h = hashlib.sha256(raw_u32(ids) + raw_u32(cl)).hexdigest()
# VmHWM of this process's own address space (ru_maxrss would include the parent's RSS
# at fork time, which Linux carries across execve).
peak = 0
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
print(f"{secs:.4f} {len(ids)} {h} {peak}")
