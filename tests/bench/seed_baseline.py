"""The seed's own implementation, timed as a whole process: respan-ai's ``log_batch_results``.

Run in a separate virtual environment that has ``respan-ai`` (see ``tests/bench/run.py``).
It loads the files into memory, as the seed's API requires, and flushes before exiting. From
the error file it gets the lines it can take (HTTP errors, which carry a ``response``): it
crashes on the ``response: null`` lines of expired requests, so those are left out.
Usage: ``python seed_baseline.py BASE_URL INPUT OUTPUT [ERRORS]``.
"""

from __future__ import annotations

import json
import sys


def seed_lines(output_path: str, errors_path: str | None) -> list[dict]:  # type: ignore[type-arg]
    """The result lines the seed is given: every output line, and the error lines with a response."""
    with open(output_path, encoding="utf-8") as fh:
        results = [json.loads(line) for line in fh if line.strip()]
    if errors_path:
        with open(errors_path, encoding="utf-8") as fh:
            errors = [json.loads(line) for line in fh if line.strip()]
        results.extend(line for line in errors if line.get("response") is not None)
    return results


def main(base_url: str, input_path: str, output_path: str, errors_path: str | None = None) -> None:
    from respan import Respan

    client = Respan(api_key="benchmark", base_url=base_url, is_auto_instrument=False)
    with open(input_path, encoding="utf-8") as fh:
        requests = [json.loads(line) for line in fh if line.strip()]
    results = seed_lines(output_path, errors_path)
    client.log_batch_results(requests, results, trace_id="0af7651916cd43dd8448eb211c80319c")
    client.flush()


if __name__ == "__main__":
    main(*sys.argv[1:])
