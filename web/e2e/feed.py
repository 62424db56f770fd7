"""Sends a known set of logs, one trace and two metrics to a running Porthole with the
OpenTelemetry Python SDK, then prints what it sent as one JSON line, for the browser tests
to check the UI against.

Usage: feed.py --endpoint URL [--protocol grpc|http] --word WORD [--service NAME]
               [--errors N] [--infos N] [--spans N] [--no-trace] [--no-metrics] [--json-infos]

Every log body carries WORD; the first `traced` logs carry the trace's ids (sent inside
the trace's error span), the others an exception (`exc_info`); the trace is one root with `spans - 1` descendants, each the child
of an earlier span, and exactly one span with status ERROR.
"""

import argparse
import json
import logging
import sys
import time

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode


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
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (
        OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"),
        OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    parser.add_argument("--word", required=True, help="a word every log body carries")
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--version", default="v2.0.1")
    parser.add_argument("--namespace", default="shop")
    parser.add_argument("--pod", default=None, help="default: SERVICE-7d9f")
    parser.add_argument("--errors", type=int, default=5)
    parser.add_argument("--infos", type=int, default=15)
    parser.add_argument("--traced", type=int, default=3, help="error logs carrying the trace ids")
    parser.add_argument("--spans", type=int, default=6)
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument("--json-infos", action="store_true", help="info records are JSON log lines")
    args = parser.parse_args()
    pod = args.pod or f"{args.service}-7d9f"

    resource = Resource.create(
        {
            "service.name": args.service,
            "service.version": args.version,
            "k8s.namespace.name": args.namespace,
            "k8s.pod.name": pod,
            "k8s.container.name": "app",
        }
    )
    log_exporter, span_exporter, metric_exporter = exporters(args.protocol, args.endpoint)
    logger_provider = LoggerProvider(resource=resource)
    # A queue that holds every record a test sends: the SDK's default (2048) drops what a
    # fast loop logs past it.
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter, max_queue_size=32768, max_export_batch_size=2048)
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    providers = [logger_provider, tracer_provider]

    logger = logging.getLogger(f"feed-{args.word}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))

    sent = {
        "word": args.word,
        "service": args.service,
        "version": args.version,
        "namespace": args.namespace,
        "pod": pod,
        "errors": args.errors,
        "infos": args.infos,
        "logs": args.errors + args.infos,
        "error_bodies": [],
        "info_bodies": [],
        "traced_bodies": [],
    }

    def log_infos():
        for i in range(args.infos):
            body = f"{args.word} request served order={i}"
            if args.json_infos:
                # As a service that logs JSON writes its lines.
                body = json.dumps({"msg": body, "route": "/cart", "http": {"code": 200}})
            logger.info(body, extra={"order.id": i, "http.status": 200, "feed.word": args.word})
            sent["info_bodies"].append(body)

    def log_errors(span):
        traced = min(args.traced, args.errors) if span else 0
        for i in range(args.errors):
            extra = {"order.id": i, "http.status": 502, "feed.word": args.word}
            if i < traced:
                body = f"{args.word} payment failed order={i} traced"
                sent["traced_bodies"].append(body)
                # Logged inside the span, so the record carries its trace and span ids.
                with trace.use_span(span, end_on_exit=False):
                    logger.error(body, extra=extra)
            else:
                body = f"{args.word} payment failed order={i} connection refused"
                # With the exception, as `logger.exception` sends it: the SDK puts its type,
                # message and stack trace in attributes.
                try:
                    raise ConnectionRefusedError(f"upstream closed order {i}")
                except ConnectionRefusedError:
                    logger.error(body, extra=extra, exc_info=True)
            sent["error_bodies"].append(body)

    log_infos()
    if args.no_trace:
        log_errors(None)
    else:
        tracer = tracer_provider.get_tracer("feed", "1.0")
        t0 = time.time_ns() - 2_000_000_000
        root = tracer.start_span(
            f"GET /{args.word}", start_time=t0, attributes={"http.route": f"/{args.word}"}
        )
        spans = [root]
        error_index = max(1, args.spans // 2) if args.spans > 1 else 0
        # The error span links to a span of another trace (as a consumer's span links to
        # the producer's).
        linked = trace.SpanContext(
            trace_id=int(sent["word"].encode().hex()[:32].ljust(32, "5"), 16),
            span_id=0x1122334455667788,
            is_remote=True,
        )
        sent["linked_trace_id"] = format(linked.trace_id, "032x")
        sent["linked_span_id"] = format(linked.span_id, "016x")
        for i in range(1, args.spans):
            parent = spans[(i - 1) // 2]
            span = tracer.start_span(
                f"step {i}",
                context=trace.set_span_in_context(parent),
                start_time=t0 + i * 10_000_000,
                attributes={"step": i},
                links=[trace.Link(linked, {"link.kind": "producer"})] if i == error_index else [],
            )
            span.add_event("step started", {"step": i})
            spans.append(span)
        error_span = spans[error_index]
        error_span.set_status(Status(StatusCode.ERROR, f"{args.word} payment declined"))
        try:
            raise TimeoutError("gateway did not answer in 2s")
        except TimeoutError as e:
            error_span.record_exception(e)
        log_errors(error_span)
        for i, span in reversed(list(enumerate(spans))):
            if i:
                span.end(end_time=t0 + i * 10_000_000 + 200_000_000 // (i + 1))
        root.end(end_time=t0 + 400_000_000)
        ctx = error_span.get_span_context()
        sent["trace_id"] = format(ctx.trace_id, "032x")
        sent["error_span_id"] = format(ctx.span_id, "016x")
        sent["error_span_name"] = "root" if error_index == 0 else f"step {error_index}"
        sent["root_name"] = f"GET /{args.word}"
        sent["spans"] = args.spans

    if not args.no_metrics:
        reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        providers.append(meter_provider)
        meter = meter_provider.get_meter("feed")
        counter = meter.create_counter("feed_orders", description="orders placed")
        counter.add(5, {"region": "eu"})
        counter.add(3, {"region": "us"})
        gauge = meter.create_gauge("feed_queue_depth")
        gauge.set(17, {"queue": "payments"})
        sent["counter"] = "feed_orders"
        sent["counter_series"] = 2
        sent["gauge"] = "feed_queue_depth"

    for provider in providers:
        if not provider.force_flush(30_000):
            sys.exit(f"{type(provider).__name__}.force_flush timed out")
    for provider in providers:
        provider.shutdown()
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
