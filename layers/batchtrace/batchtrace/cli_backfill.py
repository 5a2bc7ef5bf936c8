"""``batchtrace backfill``: send the spans of a provider's past batches, each batch once.

The batches are listed through the provider's official SDK, newest first: OpenAI's with
``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``, which includes ``/v1``), Anthropic's Message Batches
with ``ANTHROPIC_API_KEY`` (and ``ANTHROPIC_BASE_URL``). ``--since``, ``--until``, ``--status``
and ``--limit`` choose which. Each finished batch's files are streamed to a temporary folder
(``--local DIR`` keeps them in ``DIR/<batch_id>/``; ``--bucket`` puts them in the batch's S3
folder) and sent over OTLP (the ``OTEL_EXPORTER_OTLP_*`` variables) with the batch object as
its lifecycle, in the trace its metadata names (else a new trace derived from the batch id).

Progress goes to stderr (a bar on a terminal, plain lines otherwise), a table of what was done
to stdout. A state file records every batch whose spans were all delivered, so running the same
command again after an interruption sends only what is left. ``--dry-run`` lists what would be
done, sends nothing and writes no state.

Exit codes: 0 every span delivered; 1 some not delivered, or the provider could not be reached
(run it again: what was delivered is skipped); 2 unusable arguments or settings, or the API key
refused (one line on stderr); 130 interrupted (the state keeps what was delivered).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchtrace import cli_backfill_aws
from batchtrace.errors import BatchtraceError, InputError
from batchtrace.timestamps import MODES

EXIT_OK, EXIT_UNDELIVERED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
PROVIDERS = ("openai", "anthropic")

_DESCRIPTION = (
    "List a provider's past batches through its official SDK (openai: OPENAI_API_KEY, OPENAI_BASE_URL with /v1;"
    " anthropic: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL), newest first, and send each finished batch's spans over"
    " OTLP (OTEL_EXPORTER_OTLP_*) with the batch object as its lifecycle, in the trace its metadata names (else a"
    " new trace derived from the batch id). Files are streamed to a temporary folder, DIR/<batch_id>/ with --local,"
    " or the batch's S3 folder with --bucket. Progress goes to stderr, a table of what was done to stdout. A state"
    " file records the batches delivered: the same command run again after an interruption sends only what is left."
)
_REQUESTS_HELP = (
    "Anthropic only: a folder of <batch_id>.jsonl files holding the requests that were submitted"
    " ({custom_id, params} lines). Anthropic's API does not return them, so without them the spans"
    " have the responses, tokens and errors but no input messages"
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backfill`` to the CLI's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "backfill",
        help="send the spans of past batches, listed through the provider's API (each batch once, resumable)",
        description=_DESCRIPTION,
        epilog="Exit codes: 0 all delivered, 1 some spans not delivered, 2 unusable arguments or API key, "
        "130 interrupted (run the same command again to resume).",
    )
    parser.add_argument("--provider", required=True, choices=PROVIDERS, help="whose batches to list")
    parser.add_argument(
        "--since", metavar="DATE", help="only batches created at or after DATE (YYYY-MM-DD or ISO 8601, UTC)"
    )
    parser.add_argument(
        "--until", metavar="DATE", help="only batches created at or before DATE (a date alone: its whole day)"
    )
    parser.add_argument(
        "--status",
        nargs="+",
        action="extend",
        metavar="STATUS",
        help="only batches in these statuses (e.g. completed expired)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N batches, the newest that match")
    parser.add_argument("--dry-run", action="store_true", help="list what would be done; send nothing, write no state")
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="the record of delivered batches (default: ~/.cache/batchtrace/backfill-<provider>.json)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--bucket", help="put each batch's files in s3://BUCKET/<prefix><batch_id>/ and send from there")
    where.add_argument(
        "--local",
        type=Path,
        metavar="DIR",
        help="keep each batch's files in DIR/<batch_id>/ (default: a temporary folder)",
    )
    parser.add_argument(
        "--prefix",
        help="with --bucket: key prefix of batch folders, ending in '/' (default: BATCHTRACE_PREFIX, else batches/)",
    )
    parser.add_argument("--requests-dir", type=Path, metavar="DIR", help=_REQUESTS_HELP)
    parser.add_argument(
        "--timestamps",
        choices=MODES,
        help="processing: spans at the time of sending, for backends that reject old spans",
    )
    parser.add_argument("--no-content", action="store_true", help="leave message text out of the spans")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and retries to stderr")
    cli_backfill_aws.add_arguments(parser)
    return parser


# --------------------------------------------------------------------------- the arguments, checked


def _check(args: argparse.Namespace) -> None:
    cli_backfill_aws.check(args)
    if args.prefix is not None and not args.bucket:
        raise InputError("--prefix needs --bucket")
    if args.requests_dir is not None and args.provider != "anthropic":
        raise InputError("--requests-dir is for --provider anthropic: OpenAI's input files are read from its API")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")


def _statuses(args: argparse.Namespace, known: Sequence[str]) -> frozenset[str]:
    """``--status`` values (space or comma separated), each one a status of the provider."""
    given = frozenset(s.strip().lower() for value in args.status or () for s in value.split(",") if s.strip())
    unknown = sorted(given - set(known))
    if unknown:
        raise InputError(f"unknown {args.provider} status {', '.join(unknown)}: expected some of {', '.join(known)}")
    return given


def _filter(args: argparse.Namespace, known: Sequence[str]) -> Any:
    from batchtrace.sources.backfill import BatchFilter, parse_when

    since = parse_when(args.since) if args.since else None
    until = parse_when(args.until, end_of_day=True) if args.until else None
    if since is not None and until is not None and since > until:
        raise InputError("--since is after --until")
    return BatchFilter(since=since, until=until, statuses=_statuses(args, known), limit=args.limit)


def _options(args: argparse.Namespace) -> Any:
    from batchtrace.content import ContentPolicy
    from batchtrace.send.otlp_config import OtlpConfig
    from batchtrace.sources.backfill import RunOptions
    from batchtrace.timestamps import TimestampPolicy

    if args.dry_run:
        return RunOptions()
    content = ContentPolicy.from_env()
    return RunOptions(
        otlp=OtlpConfig.resolve(),  # a bad endpoint is exit 2 before anything is listed
        timestamps=TimestampPolicy(args.timestamps) if args.timestamps else None,
        content=ContentPolicy(capture=False, max_length=content.max_length) if args.no_content else None,
    )


def _s3_folders(args: argparse.Namespace) -> Any:
    from botocore.exceptions import BotoCoreError, ClientError

    from batchtrace.s3_batch import s3_client
    from batchtrace.sources.batch_folder import S3Folders
    from batchtrace.sources.openai_files import Destination, FetchSettings

    settings = FetchSettings.from_env()
    destination = Destination(bucket=args.bucket, prefix=settings.prefix if args.prefix is None else args.prefix)
    s3 = s3_client()
    try:
        s3.head_bucket(Bucket=args.bucket)
    except (BotoCoreError, ClientError) as err:
        raise InputError(f"S3 bucket {args.bucket}: {' '.join(str(err).split())}") from None
    return S3Folders(s3, destination, names=settings.names, transfer=settings.transfer)


def _folders(args: argparse.Namespace) -> Any:
    from batchtrace.s3_batch import FileNames
    from batchtrace.sources.batch_folder import LocalFolders

    if args.bucket and not args.dry_run:
        return _s3_folders(args)
    if args.local is not None and args.local.exists() and not args.local.is_dir():
        raise InputError(f"--local {args.local} is not a directory")
    return LocalFolders(keep=args.local, names=FileNames.from_env())


def _source(args: argparse.Namespace) -> Any:
    """The provider's :class:`~batchtrace.sources.backfill.BatchSource` (its SDK imported only now)."""
    folders, options = _folders(args), _options(args)
    if args.provider == "anthropic":
        from batchtrace.sources import anthropic_batches as anthropic

        return anthropic.AnthropicBatches(anthropic.client_from_env(), folders, options, args.requests_dir)
    from batchtrace.sources import openai_batches as openai

    return openai.OpenAIBatches(openai.client_from_env(), folders, options)


@dataclass(frozen=True, slots=True)
class _Plan:
    source: Any
    chosen: Any
    state: Any
    dry_run: bool


def _plan(args: argparse.Namespace) -> _Plan:
    from batchtrace.sources.backfill import BackfillState, default_state_path

    _check(args)
    source = _source(args)
    state = BackfillState.load(args.state or default_state_path(args.provider), args.provider)
    if not args.dry_run:
        state.save()  # an unwritable state file is exit 2 now, not after the first batch
    return _Plan(source, _filter(args, source.statuses), state, args.dry_run)


# --------------------------------------------------------------------------- the run


def _report(outcomes: Sequence[Any], plan: _Plan) -> None:
    from batchtrace.cli_backfill_report import table, totals

    if outcomes:
        sys.stdout.write(table(outcomes) + "\n")
    sys.stdout.write(totals(outcomes, dry_run=plan.dry_run) + "\n")
    if not plan.dry_run:
        sys.stdout.write(f"state: {plan.state.path}\n")
    sys.stdout.flush()


class _FirstOnly(logging.Filter):
    """Lets a logger's first record through: the hint that spans are old holds for every past batch alike."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        first, self.seen = not self.seen, True
        return first


def _execute(plan: _Plan) -> int:
    from batchtrace.cli_backfill_report import Progress
    from batchtrace.sources.backfill import run_backfill, select

    progress = Progress.on(sys.stderr, plan.source.provider)
    logging.getLogger("batchtrace.timestamps").addFilter(_FirstOnly())
    outcomes: list[Any] = []
    try:
        batches = select(plan.source.list_batches(), plan.chosen, progress.listing)
        progress.listed(batches)
        for outcome in run_backfill(plan.source, batches, plan.state, dry_run=plan.dry_run, on_start=progress.start):
            outcomes.append(outcome)
            progress.finished(outcome)
    except BaseException:
        progress.close()
        if outcomes:
            _report(outcomes, plan)
        raise
    progress.close()
    _report(outcomes, plan)
    return EXIT_UNDELIVERED if any(o.undelivered for o in outcomes) else EXIT_OK


def _fail(reason: str, code: int) -> int:
    print(f"batchtrace: error: {' '.join(reason.split())}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    """Backfill the provider's batches; the exit code (errors are one line on stderr)."""
    plan: _Plan | None = None
    try:
        plan = _plan(args)
        if args.on_aws:
            return cli_backfill_aws.run_on_aws(args, plan.source, plan.chosen, plan.state)
        return _execute(plan)
    except InputError as err:
        return _fail(str(err), EXIT_USAGE)
    except BatchtraceError as err:  # the provider unreachable, after the SDK's retries
        return _fail(str(err), EXIT_UNDELIVERED)
    except KeyboardInterrupt:
        kept = f" (kept in {plan.state.path})" if plan is not None and not plan.dry_run else ""
        print(
            f"batchtrace: interrupted; the batches delivered so far are recorded{kept}: run again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
