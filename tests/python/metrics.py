"""Records a counter, a gauge and a histogram with the OpenTelemetry Python SDK and exports
them once over OTLP/gRPC to a running Porthole.

Usage: metrics.py --endpoint http://127.0.0.1:4317
"""

import argparse

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=args.endpoint, insecure=True),
        export_interval_millis=60_000,
    )
    resource = Resource.create({"service.name": "shop", "service.instance.id": "shop-1"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("shop")
    orders = meter.create_counter("shop.orders", unit="{order}", description="orders placed")
    for n in (3, 4):
        orders.add(n, {"region": "eu"})
    meter.create_observable_gauge(
        "shop.temperature", callbacks=[lambda _options: [Observation(21.5)]], unit="Cel"
    )
    checkout = meter.create_histogram("shop.checkout.duration", unit="ms")
    for _ in range(50):
        checkout.record(3)
        checkout.record(30)
    if not provider.force_flush(timeout_millis=30_000):
        raise SystemExit("metrics export did not complete")
    provider.shutdown()
    print("sent")


if __name__ == "__main__":
    main()
