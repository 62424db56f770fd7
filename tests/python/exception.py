"""Logs one exception the way a Python service does, `logger.exception(...)` inside an
`except`, through the OpenTelemetry SDK's logging handler over OTLP/gRPC, and prints the
stack trace the SDK sent (the `exception.stacktrace` attribute) as JSON.

Usage: exception.py --endpoint URL
"""

import argparse
import json
import logging
import sys

from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource


def settle(ledger, parts):
    return ledger / parts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    provider = LoggerProvider(resource=Resource.create({"service.name": "billing"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, insecure=True))
    )
    logger = logging.getLogger("billing")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=provider))
    try:
        settle(100, 0)
    except ZeroDivisionError:
        logger.exception("settlement run aborted")
    if not provider.force_flush(30_000):
        sys.exit("force_flush timed out")
    provider.shutdown()
    print(json.dumps({"sent": "settlement run aborted"}))


if __name__ == "__main__":
    main()
