"""Sends logs, spans and metrics to a running Porthole with the OpenTelemetry Python SDK,
then reads the Delta tables back with the independent `deltalake` reader and checks every
record arrived intact. Exits non-zero with a reason on any mismatch.

Usage: roundtrip.py --protocol grpc|http --endpoint URL --table-root URI [--tag TAG]
S3 table roots (s3://...) use the AWS_* environment for credentials.
"""

import argparse
import json
import logging
import os
import sys
import uuid

from opentelemetry import metrics, trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from deltalake import DeltaTable


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (
            OTLPLogExporter(endpoint=endpoint, insecure=True),
            OTLPSpanExporter(endpoint=endpoint, insecure=True),
            OTLPMetricExporter(endpoint=endpoint, insecure=True),
        )
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # gzip on one signal proves compressed bodies are accepted.
    return (
        OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", compression=Compression.Gzip),
        OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
    )


def send(protocol, endpoint, tag):
    resource = Resource.create(
        {
            "service.name": f"checkout-{tag}",
            "service.version": "v2.3.1",
            "k8s.namespace.name": "shop",
            "k8s.pod.name": f"checkout-{tag}-7d9f",
            "k8s.container.name": "app",
            "container.image.id": "sha256:0123abcd",
        }
    )
    log_exporter, span_exporter, metric_exporter = exporters(protocol, endpoint)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[View(instrument_name="latency_exp", aggregation=ExponentialBucketHistogramAggregation())],
    )

    logger = logging.getLogger(f"roundtrip-{tag}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
    tracer = tracer_provider.get_tracer("roundtrip", "1.0")
    meter = meter_provider.get_meter("roundtrip")

    sent = {"logs": [], "spans": []}
    with tracer.start_as_current_span("checkout", attributes={"http.route": "/pay", "retries": 3}) as parent:
        parent.add_event("cart loaded", {"items": 2})
        with tracer.start_as_current_span("charge card") as child:
            for i in range(20):
                body = f"{tag} payment failed order={i} connection refused"
                logger.error(body, extra={"order.id": i, "ratio": 0.5, "retry": True, "tag": tag})
                sent["logs"].append(body)
            sent["spans"].append({"name": "charge card", "span_id": format(child.get_span_context().span_id, "016x")})
        sent["spans"].append({"name": "checkout", "span_id": format(parent.get_span_context().span_id, "016x")})
        sent["trace_id"] = format(parent.get_span_context().trace_id, "032x")

    counter = meter.create_counter("orders_total")
    counter.add(5, {"tag": tag})
    gauge = meter.create_gauge("queue_depth")
    gauge.set(17, {"tag": tag})
    histogram = meter.create_histogram("latency_ms")
    exp = meter.create_histogram("latency_exp")
    for v in (1, 5, 50, 500):
        histogram.record(v, {"tag": tag})
        exp.record(v, {"tag": tag})

    for provider in (tracer_provider, logger_provider, meter_provider):
        if not provider.force_flush(30_000):
            sys.exit(f"{type(provider).__name__}.force_flush timed out")
    for provider in (tracer_provider, logger_provider, meter_provider):
        provider.shutdown()
    return sent


def storage_options():
    keys = ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ALLOW_HTTP"]
    return {k: os.environ[k] for k in keys if k in os.environ}


def rows(table_root, name):
    uri = f"{table_root.rstrip('/')}/{name}"
    table = DeltaTable(uri, storage_options=storage_options() if uri.startswith("s3://") else None)
    return table.to_pyarrow_table().to_pylist()


def attrs(row, column="attributes"):
    return {k: v for k, v in (row[column] or [])}


def check(condition, message):
    if not condition:
        sys.exit(f"roundtrip check failed: {message}")


def verify(table_root, tag, sent):
    service = f"checkout-{tag}"
    logs = [r for r in rows(table_root, "logs") if r["service"] == service]
    bodies = sorted(r["body"] for r in logs)
    check(bodies == sorted(sent["logs"]), f"log bodies differ: got {len(bodies)} of {len(sent['logs'])}")
    for r in logs:
        check(r["trace_id"] == sent["trace_id"], f"log trace_id {r['trace_id']} != {sent['trace_id']}")
        check(r["severity"] == "ERROR", f"severity {r['severity']}")
        a = attrs(r)
        check(a["order.id"]["type"] == "int", f"order.id lost its type: {a['order.id']}")
        check(a["ratio"] == {"type": "double", "value": "0.5"}, f"ratio: {a['ratio']}")
        check(a["retry"] == {"type": "bool", "value": "true"}, f"retry: {a['retry']}")
        check(a["tag"] == {"type": "string", "value": tag}, f"tag: {a['tag']}")
        check((r["namespace"], r["pod"], r["container"], r["version"], r["image_digest"])
              == ("shop", f"checkout-{tag}-7d9f", "app", "v2.3.1", "sha256:0123abcd"), f"promoted columns: {r}")
        check(attrs(r, "resource_attributes")["k8s.pod.name"]["value"] == f"checkout-{tag}-7d9f", "resource attributes")
        check(r["day"] and r["timestamp"] is not None, "day partition and timestamp")

    spans = [r for r in rows(table_root, "spans") if r["service"] == service]
    got = sorted((r["name"], r["span_id"]) for r in spans)
    want = sorted((s["name"], s["span_id"]) for s in sent["spans"])
    check(got == want, f"spans differ: {got} vs {want}")
    by_name = {r["name"]: r for r in spans}
    check(all(r["trace_id"] == sent["trace_id"] for r in spans), "span trace ids")
    check(by_name["charge card"]["parent_span_id"] == by_name["checkout"]["span_id"], "parent link")
    check(attrs(by_name["checkout"])["retries"] == {"type": "int", "value": "3"}, "span attribute")
    check(json.loads(by_name["checkout"]["events"])[0]["name"] == "cart loaded", "span event")
    check(by_name["checkout"]["scope_name"] == "roundtrip", "scope name")

    points = [r for r in rows(table_root, "metrics") if r["service"] == service]
    kinds = {r["metric_name"]: r for r in points}
    check(kinds["orders_total"]["metric_type"] == "sum" and kinds["orders_total"]["value_int"] == 5, f"counter: {kinds.get('orders_total')}")
    check(kinds["queue_depth"]["metric_type"] == "gauge" and kinds["queue_depth"]["value_int"] == 17, "gauge")
    h = kinds["latency_ms"]
    check(h["metric_type"] == "histogram" and h["count"] == 4 and h["sum"] == 556 and sum(h["bucket_counts"]) == 4, f"histogram: {h}")
    e = kinds["latency_exp"]
    check(e["metric_type"] == "exponential_histogram" and e["count"] == 4 and sum(e["positive_bucket_counts"]) == 4, f"exp histogram: {e}")
    print(json.dumps({"ok": True, "logs": len(logs), "spans": len(spans), "points": len(points)}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--table-root", required=True)
    parser.add_argument("--tag", default=uuid.uuid4().hex[:8])
    args = parser.parse_args()
    sent = send(args.protocol, args.endpoint, args.tag)
    verify(args.table_root, args.tag, sent)
    sys.stdout.flush()
    # The deltalake/pyarrow runtime threads can abort during interpreter teardown; the work is done.
    os._exit(0)


if __name__ == "__main__":
    main()
