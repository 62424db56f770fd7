"""Prints {body: count} for one service's rows in a Porthole logs table, read with the
independent `deltalake` reader; also checks the table loads cleanly (log consistent)."""

import argparse
import collections
import json
import os

from deltalake import DeltaTable

parser = argparse.ArgumentParser()
parser.add_argument("--table-root", required=True)
parser.add_argument("--service", required=True)
args = parser.parse_args()

uri = f"{args.table_root.rstrip('/')}/logs"
keys = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"]
options = {k: os.environ[k] for k in keys if k in os.environ} if uri.startswith("s3://") else None
table = DeltaTable(uri, storage_options=options)
rows = table.to_pyarrow_table(columns=["service", "body"]).to_pylist()
counts = collections.Counter(r["body"] for r in rows if r["service"] == args.service)
print(json.dumps(counts), flush=True)
# The deltalake/pyarrow runtime threads can abort during interpreter teardown; the work is done.
os._exit(0)
