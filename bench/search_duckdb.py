"""Baseline for bench-search: DuckDB over Porthole's own Parquet files, searched with LIKE.

Usage: search_duckdb.py GLOB REPEAT TERM...

Opens DuckDB once and, per term, times in-process

    SELECT timestamp, body FROM read_parquet(GLOB) WHERE body LIKE '%term%'
    ORDER BY timestamp DESC LIMIT 100

once to warm up and then REPEAT times. Prints
{"duckdb": version, "terms": {term: {"ms": median, "rows": rows returned}}}.
"""

import json
import statistics
import sys
import time

try:
    import duckdb
except ImportError:
    sys.exit("duckdb is not installed: .venv/bin/pip install -r bench/requirements.lock")


def literal(text):
    return "'" + text.replace("'", "''") + "'"


def contains(term):
    """A LIKE pattern matching `term` anywhere, with LIKE's own wildcards escaped."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"LIKE {literal('%' + escaped + '%')} ESCAPE '\\'"


def main():
    glob, repeat, terms = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    con = duckdb.connect()
    results = {}
    for term in terms:
        sql = (
            f"SELECT timestamp, body FROM read_parquet({literal(glob)}) "
            f"WHERE body {contains(term)} ORDER BY timestamp DESC LIMIT 100"
        )
        rows = con.execute(sql).fetchall()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - start) * 1e3)
        results[term] = {"ms": statistics.median(times), "rows": len(rows)}
    print(json.dumps({"duckdb": duckdb.__version__, "terms": results}))


main()
