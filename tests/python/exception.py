"""Logs one exception the way a Python service does, `logger.exception(...)` inside an
`except`, through the OpenTelemetry SDK's logging handler over OTLP/gRPC, inside a span
`settle` that the exception fails (the SDK records it as the span's `exception` event and
sets its status to ERROR), then logs a dict (a map body). Prints the trace id as JSON.

Usage: exception.py --endpoint URL
"""

import argparse
import json
import logging
import sys

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


def settle(ledger, parts):
    return ledger / parts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    resource = Resource.create({"service.name": "billing"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True))
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=args.endpoint, insecure=True))
    )
    logger = logging.getLogger("billing")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    tracer = tracer_provider.get_tracer("billing")
    try:
        with tracer.start_as_current_span("settle") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            settle(100, 0)
    except ZeroDivisionError:
        logger.exception("settlement run aborted")
    # A structured record: the SDK sends the dict as a map body.
    logger.warning({"event": "retry", "attempt": 3, "gateway": {"name": "adyen"}})
    for each in (provider, tracer_provider):
        if not each.force_flush(30_000):
            sys.exit("force_flush timed out")
        each.shutdown()
    print(json.dumps({"trace_id": trace_id}))


if __name__ == "__main__":
    main()
