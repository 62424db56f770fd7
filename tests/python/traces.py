"""Sends traces to a running Porthole with the OpenTelemetry Python SDK over gRPC:
one trace of 50 spans across three services (frontend, checkout, inventory; 5 of them
errors, 2 s long) and one short single-span trace. Prints their ids as JSON.

Usage: traces.py --endpoint URL
"""

import argparse
import json
import time

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

SERVICES = ["frontend", "checkout", "inventory"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    providers = {}
    for service in SERVICES:
        provider = TracerProvider(
            resource=Resource.create({"service.name": service, "k8s.namespace.name": "shop"})
        )
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True))
        )
        providers[service] = provider
    tracers = {s: p.get_tracer("traces-test", "1.0") for s, p in providers.items()}

    t0 = time.time_ns() - 60_000_000_000
    root = tracers["frontend"].start_span(
        "GET /checkout", start_time=t0, attributes={"http.route": "/checkout"}
    )
    spans = [root]
    for i in range(49):
        parent = spans[i // 3]
        span = tracers[SERVICES[(i + 1) % 3]].start_span(
            f"step {i}",
            context=trace.set_span_in_context(parent),
            start_time=t0 + (i + 1) * 1_000_000,
            attributes={"step": i},
        )
        if i % 10 == 0:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        spans.append(span)
    for i, span in reversed(list(enumerate(spans[1:], start=1))):
        span.end(end_time=t0 + (i + 1) * 1_000_000 + 500_000)
    root.end(end_time=t0 + 2_000_000_000)

    small = tracers["frontend"].start_span(
        "GET /healthz", start_time=t0 + 5_000_000_000, attributes={"http.route": "/healthz"}
    )
    small.end(end_time=t0 + 5_001_000_000)

    for provider in providers.values():
        provider.force_flush()
        provider.shutdown()
    print(
        json.dumps(
            {
                "big": format(root.get_span_context().trace_id, "032x"),
                "small": format(small.get_span_context().trace_id, "032x"),
                "big_errors": 5,
            }
        )
    )


if __name__ == "__main__":
    main()
