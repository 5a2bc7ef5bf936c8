"""``batchtrace replay``: backfill a batch's spans from local files.

Exit codes: 0 every span delivered, 1 some not delivered, 2 unusable input or arguments (one
line on stderr, no traceback). The summary is printed as JSON on stdout whenever a run happened.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

import orjson

from batchtrace import __version__, cli_backfill, cli_fetch
from batchtrace.content import ContentPolicy
from batchtrace.errors import InputError, MissingFileError
from batchtrace.extract import provider_names
from batchtrace.lifecycle import BatchLifecycle, require_lifecycle
from batchtrace.run import run_batch
from batchtrace.send.delivery import DeliveryPolicy
from batchtrace.tally import Summary
from batchtrace.timestamps import MODES, TimestampPolicy
from batchtrace.trace_link import TraceHint, hint_from_trace_json

EXIT_OK, EXIT_UNDELIVERED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"batchtrace: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="batchtrace", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"batchtrace {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    replay = commands.add_parser(
        "replay",
        help="send a batch's results as spans over OTLP (OTEL_EXPORTER_OTLP_* configure where)",
        description="Send a batch's results as spans, configured by the OTEL_EXPORTER_OTLP_* variables.",
    )
    replay.add_argument(
        "--requests", type=Path, help="the batch input JSONL (not needed for Bedrock and Vertex AI output)"
    )
    replay.add_argument("--results", required=True, type=Path, help="the batch output JSONL")
    replay.add_argument("--errors", type=Path, help="the batch error JSONL (optional)")
    replay.add_argument("--trace-id", help="32-hex trace id of the trace that submitted the batch")
    replay.add_argument("--parent-span-id", help="16-hex span id to nest the batch_results span under")
    replay.add_argument("--traceparent", help="W3C traceparent: completions nest directly under that span")
    replay.add_argument("--trace-json", type=Path, help="a trace.json (trace ids and OpenAI's batch object)")
    replay.add_argument(
        "--batch-json",
        type=Path,
        help="the provider's batch object or job (OpenAI, Anthropic, Bedrock, Gemini, Vertex AI, Mistral...):"
        " batch_results spans its lifecycle and its counts are reconciled with the files",
    )
    replay.add_argument("--batch-id", help="the OpenAI batch id (default: from --trace-json, else none)")
    replay.add_argument(
        "--provider",
        choices=provider_names(),
        metavar="NAME",
        help=f"the batch's provider format ({', '.join(provider_names())}); detected from the lines by default",
    )
    replay.add_argument("--model", help="the model, for formats whose lines do not name it (Mistral, Gemini)")
    replay.add_argument("--no-content", action="store_true", help="leave message text out of the spans")
    replay.add_argument(
        "--timestamps",
        choices=MODES,
        help="original: spans at the provider's times (default, or BATCHTRACE_TIMESTAMPS); processing: at"
        " the time of replay, for backends that reject old spans (the provider's times stay as attributes)",
    )
    replay.add_argument(
        "--max-time",
        type=float,
        metavar="SECONDS",
        help="stop retrying deliveries after this long; what is undelivered by then is counted (exit 1)",
    )
    replay.add_argument("-v", "--verbose", action="store_true", help="log progress and retries to stderr")
    cli_fetch.add_parser(commands)
    cli_backfill.add_parser(commands)
    return parser


def _open(path: Path, what: str, stack: contextlib.ExitStack) -> IO[bytes]:
    try:
        return stack.enter_context(path.open("rb"))
    except FileNotFoundError:
        raise MissingFileError(what, str(path)) from None
    except IsADirectoryError:
        raise InputError(f"{what} is a directory, not a file: {path}") from None
    except PermissionError:
        raise InputError(f"{what} is not readable: {path}") from None


def _trace_json(path: Path, what: str = "trace.json") -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise MissingFileError(what, str(path)) from None
    except orjson.JSONDecodeError:
        raise InputError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object")
    return data


def _doc_str(doc: dict[str, Any], key: str) -> str | None:
    value = doc.get(key)
    return value if isinstance(value, str) and value else None


def _check(args: argparse.Namespace) -> None:
    if args.parent_span_id and not args.trace_id:
        raise InputError("--parent-span-id needs --trace-id")
    if args.max_time is not None and not args.max_time > 0:
        raise InputError("--max-time must be a positive number of seconds")


def _hint(args: argparse.Namespace, doc: dict[str, Any]) -> TraceHint:
    """Ids given as flags are the user's own: a bad one is an error. Ids stored in trace.json
    fall back like the Lambda function's do (a warning, a new trace or a root batch span)."""
    hint = TraceHint(traceparent=args.traceparent, trace_id=args.trace_id, span_id=args.parent_span_id)
    if not (args.traceparent or args.trace_id):
        hint = hint_from_trace_json(doc) or hint
    return hint


def _content(args: argparse.Namespace) -> ContentPolicy:
    content = ContentPolicy.from_env()
    return ContentPolicy(capture=False, max_length=content.max_length) if args.no_content else content


def _report(summary: Summary) -> int:
    """The summary on stdout, one line on stderr if anything was not delivered; the exit code."""
    sys.stdout.write(orjson.dumps(summary.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    if summary.spans_failed:
        print(f"batchtrace: {summary.failure_reason()}", file=sys.stderr)
        return EXIT_UNDELIVERED
    return EXIT_OK


def _batch(args: argparse.Namespace, doc: dict[str, Any]) -> dict[str, Any] | BatchLifecycle | None:
    """``--batch-json`` (a user's file: of no known shape, it is an error), else ``trace.json``'s ``batch``."""
    if args.batch_json:
        return require_lifecycle(_trace_json(args.batch_json, "batch object"), str(args.batch_json))
    batch = doc.get("batch")
    return batch if isinstance(batch, dict) else None


def replay(args: argparse.Namespace) -> int:
    _check(args)
    doc = _trace_json(args.trace_json) if args.trace_json else {}
    batch = _batch(args, doc)
    with contextlib.ExitStack() as stack:
        requests = _open(args.requests, "requests file", stack) if args.requests else None
        results = [(str(args.results), _open(args.results, "results file", stack))]
        if args.errors:
            results.append((str(args.errors), _open(args.errors, "errors file", stack)))
        summary = run_batch(
            requests,
            results,
            batch_id=args.batch_id,
            batch=batch,
            hint=_hint(args, doc),
            content=_content(args),
            timestamps=TimestampPolicy(args.timestamps) if args.timestamps else None,
            input_name=str(args.requests or "requests"),
            provider=args.provider or _doc_str(doc, "provider"),
            model=args.model or _doc_str(doc, "model"),
            delivery=DeliveryPolicy(deadline=time.monotonic() + args.max_time) if args.max_time else None,
        )
    return _report(summary)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="batchtrace: %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "backfill":
            return cli_backfill.run(args)
        return cli_fetch.run(args) if args.command == "fetch" else replay(args)
    except InputError as err:
        print(f"batchtrace: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("batchtrace: interrupted", file=sys.stderr)
        return 130


def console() -> int:
    """The ``batchtrace`` command: :func:`main`, then an exit without the garbage collector's last walk.

    At exit the interpreter's cyclic garbage collector walks every object still alive (the price
    data, Pydantic's schemas, the request index): ~60 ms after a 50,000-request replay, 2% of it,
    for memory the operating system takes back anyway. Frozen objects are not walked; everything
    else about exiting (atexit handlers, flushed output, the exit code) is as before.
    """
    code = main()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(console())
