"""``make demo``: the main job on an embedded default, with nothing to configure.

Starts a local S3 API (moto) and a local OTLP/HTTP receiver on 127.0.0.1, uploads
``samplefiles/`` as the batch that ``events/s3-put.json`` points at, invokes the Lambda handler
with that event exactly as Lambda would, and prints the summary and the trace that arrived.
Everything it starts, it stops.
"""

from __future__ import annotations

import importlib
import json
import os
import posixpath
import sys
from pathlib import Path

import boto3

from tests.support.lambda_context import FakeLambdaContext
from tests.support.moto_s3 import MotoServer
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.trace_tree import render_trace_tree

ROOT = Path(__file__).resolve().parent.parent
EVENT = ROOT / "events" / "s3-put.json"
SAMPLES = ROOT / "samplefiles"
#: Upload order matters: the output file's creation is what triggers the function.
UPLOAD_ORDER = ("input.jsonl", "trace.json", "errors.jsonl", "output.jsonl")


def main() -> int:
    event = json.loads(EVENT.read_text())
    record = event["Records"][0]["s3"]
    bucket, output_key = record["bucket"]["name"], record["object"]["key"]
    folder = posixpath.dirname(output_key)
    with MotoServer() as moto, OtlpReceiver() as receiver:
        os.environ.update(moto.env())
        os.environ.update(
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
                "OTEL_SERVICE_NAME": "batchtrace-demo",
                "POWERTOOLS_SERVICE_NAME": "batchtrace",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
            }
        )
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=bucket)
        for name in UPLOAD_ORDER:
            s3.upload_file(str(SAMPLES / name), bucket, f"{folder}/{name}")
        print(f"local S3 API  {moto.endpoint}   bucket s3://{bucket}/{folder}/ ({', '.join(UPLOAD_ORDER)})")
        print(f"OTLP receiver {receiver.endpoint}")
        print(f"invoking app.lambda_handler with {EVENT.relative_to(ROOT)}\n")

        app = importlib.import_module("app")
        summary = app.lambda_handler(event, FakeLambdaContext(remaining_ms=900_000))

        print("summary returned by the function:")
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        print(f"\ntrace received by the OTLP receiver ({receiver.span_count} spans):")
        print(render_trace_tree(receiver.spans))
        delivered = summary["spans_exported"] == receiver.span_count == summary["spans_built"]
    print("\nall spans delivered; local S3 and receiver stopped." if delivered else "\nSPANS MISSING")
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
