"""``batchtrace replay`` starts without loading what only other commands need.

The OpenAI SDK (~0.3 s, ~35 MB) and boto3's transfer manager are needed by ``fetch``,
``backfill`` and the Lambda functions, not by a replay of local files: at 50,000 requests a
replay takes about 3 s, so half a second of imports was a sixth of it.
"""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("openai", "boto3", "botocore", "anthropic")


def test_the_cli_and_the_library_load_no_provider_sdk_or_aws_sdk() -> None:
    probe = "import sys, batchtrace, batchtrace.cli; print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    top_level = set(loaded.stdout.split())
    assert "batchtrace" in top_level
    assert top_level.isdisjoint(HEAVY), sorted(top_level & set(HEAVY))


def test_genai_prices_loads_while_the_input_is_indexed_not_before() -> None:
    """genai-prices (~0.1 s with Pydantic) is imported by a run, overlapped with indexing, not by ``import``."""
    probe = (
        "import sys, batchtrace, batchtrace.cli; print('genai_prices' in sys.modules);"
        "from batchtrace import pricing; from batchtrace.record import Usage;"
        "cost = pricing.price('openai', 'gpt-4o-mini', Usage(input_tokens=1000, output_tokens=10), None);"
        "print('genai_prices' in sys.modules, cost is not None and cost.batch_usd > 0)"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert loaded.stdout.split() == ["False", "True", "True"]
