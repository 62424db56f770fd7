"""Baseline for bench-ingest: write the same rows as ONE zstd Parquet file with pyarrow.
Prints {"cpu_seconds": ..., "bytes": ...}; only the sort + write is timed, best of three
(the machine is shared: one run alone moved by half between runs)."""

import json
import sys
import time

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

rows = pj.read_json(sys.argv[1])
best = float("inf")
for _ in range(3):
    start = time.process_time()
    table = rows.sort_by([("service", "ascending"), ("time_unix_nano", "ascending")])
    pq.write_table(table, sys.argv[2], compression="zstd")
    best = min(best, time.process_time() - start)
print(json.dumps({"cpu_seconds": best, "bytes": table.nbytes}))
