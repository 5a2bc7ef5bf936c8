"""``batchtrace backfill --on-aws``: the listed batches go to the stack's Distributed Map, not sent from here.

The batches are listed and filtered exactly as for a local backfill (``--since``, ``--until``,
``--status``, ``--limit``; batches the state file records as delivered are left out), then
:func:`~batchtrace.sources.backfill_aws.start_distributed_backfill` writes their ids to
``s3://<--bucket>/<--backfill-prefix>manifests/`` and starts the stack's backfill state machine
(``--state-machine-arn``, the stack's ``BackfillStateMachineArn`` output). The command returns
at once: what it started goes to stdout as one JSON line (the execution, the manifest, where the
results will be); Step Functions does the work, at most ``BackfillMaxConcurrency`` batches at a
time, and writes the results under ``<backfill prefix>results/``. Batches still running are left
out (there is nothing to trace yet). ``--dry-run`` lists what would be started.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from batchtrace.errors import InputError
from batchtrace.sources.backfill import select
from batchtrace.sources.backfill_aws import DEFAULT_BACKFILL_PREFIX, start_distributed_backfill

#: Providers the state machine can backfill: it reads the batch and its files through OpenAI's API.
ON_AWS_PROVIDERS = ("openai",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--on-aws``, ``--state-machine-arn`` and ``--backfill-prefix`` on ``batchtrace backfill``."""
    group = parser.add_argument_group("on AWS (the stack's backfill state machine, EnableBackfill=true)")
    group.add_argument(
        "--on-aws",
        action="store_true",
        help="start the stack's Distributed Map backfill on the listed batches instead of sending them from here"
        " (needs --state-machine-arn and --bucket, the stack's BackfillStateMachineArn and BatchesBucketName)",
    )
    group.add_argument("--state-machine-arn", metavar="ARN", help="with --on-aws: the stack's BackfillStateMachineArn")
    group.add_argument(
        "--backfill-prefix",
        default=DEFAULT_BACKFILL_PREFIX,
        metavar="PREFIX",
        help=f"with --on-aws: the stack's BackfillPrefix (default {DEFAULT_BACKFILL_PREFIX})",
    )


def check(args: argparse.Namespace) -> None:
    """:class:`InputError` in one line for an ``--on-aws`` combination that cannot work."""
    if not args.on_aws:
        if args.state_machine_arn:
            raise InputError("--state-machine-arn needs --on-aws")
        return
    if args.provider not in ON_AWS_PROVIDERS:
        raise InputError("--on-aws backfills OpenAI batches (the state machine reads them through OpenAI's API)")
    if not args.state_machine_arn or not args.bucket:
        raise InputError(
            "--on-aws needs --state-machine-arn and --bucket"
            " (the stack's BackfillStateMachineArn and BatchesBucketName)"
        )


def _pending(source: Any, chosen: Any, state: Any) -> tuple[list[str], int]:
    """The finished batches not yet delivered, newest first, and how many listed ones are still running."""
    batches = select(source.list_batches(), chosen)
    finished = [batch.id for batch in batches if batch.finished and state.delivered(batch.id) is None]
    return finished, sum(1 for batch in batches if not batch.finished)


def run_on_aws(args: argparse.Namespace, source: Any, chosen: Any, state: Any) -> int:
    """List, then start the backfill on AWS; exit 0 once it is started (errors raise, for the CLI to report)."""
    batch_ids, running = _pending(source, chosen, state)
    if running:
        print(f"batchtrace: leaving out {running} batch(es) still running: nothing to trace yet", file=sys.stderr)
    if not batch_ids:
        print("batchtrace: no finished batch to backfill", file=sys.stderr)
        return 0
    if args.dry_run:
        sys.stdout.write("".join(f"{batch_id}\n" for batch_id in batch_ids))
        print(f"batchtrace: would start {args.state_machine_arn} on {len(batch_ids)} batch(es)", file=sys.stderr)
        return 0
    started = start_distributed_backfill(batch_ids, args.state_machine_arn, args.bucket, args.backfill_prefix)
    sys.stdout.write(json.dumps(started.as_dict()) + "\n")
    print(
        f"batchtrace: started the backfill of {started.batches} batch(es) on AWS; results in {started.results_uri}",
        file=sys.stderr,
    )
    return 0
