"""The seed's own implementation, timed as a whole process: respan-ai's ``log_batch_results``.

Run in a separate virtual environment that has ``respan-ai`` (see ``tests/bench/run.py``).
It loads both files into memory, as the seed's API requires, and flushes before exiting.
Usage: ``python seed_baseline.py BASE_URL INPUT OUTPUT [ERRORS]``.
"""

from __future__ import annotations

import json
import sys


def main(base_url: str, input_path: str, output_path: str, errors_path: str | None = None) -> None:
    from respan import Respan

    client = Respan(api_key="benchmark", base_url=base_url, is_auto_instrument=False)
    with open(input_path, encoding="utf-8") as fh:
        requests = [json.loads(line) for line in fh if line.strip()]
    results = []
    for path in (output_path, errors_path):
        if path:
            with open(path, encoding="utf-8") as fh:
                results.extend(json.loads(line) for line in fh if line.strip())
    client.log_batch_results(requests, results, trace_id="0af7651916cd43dd8448eb211c80319c")
    client.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
