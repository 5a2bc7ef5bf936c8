"""Invoke the Lambda handler once on an S3 event, as Lambda would, and print the summary.

Used by the benchmark as a separate process (so its time and memory are measured alone):
``python -m tests.bench.invoke_handler BUCKET KEY``, with the function directory on
``PYTHONPATH`` and AWS variables pointing at a local S3 API.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from urllib.parse import quote_plus


class _Context:
    function_name = "LogBatchResultsFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:LogBatchResultsFunction"
    aws_request_id = str(uuid.uuid4())
    _deadline = time.time() + 900

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.time()) * 1000)


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
    summary = app.lambda_handler(event, _Context())
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
