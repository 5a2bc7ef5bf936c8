"""Invoke the Lambda handler once on an S3 event, as Lambda would, and print the summary.

Used by the benchmark as a separate process (so its time and memory are measured alone):
``python -m tests.bench.invoke_handler BUCKET KEY``, with the function directory on
``PYTHONPATH`` and AWS variables pointing at a local S3 API.
"""

from __future__ import annotations

import json
import sys
from urllib.parse import quote_plus

from tests.support.lambda_context import FakeLambdaContext


def main(bucket: str, key: str) -> int:
    import app  # the function directory is the task root, as in Lambda

    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "sequencer": "0A"}},
            }
        ]
    }
    summary = app.lambda_handler(event, FakeLambdaContext(remaining_ms=900_000))
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
