"""``batchtrace fetch``: copy a finished OpenAI batch's output and error files into S3.

The same copy as the state machine's FetchBatchFilesFunction, from a shell: the batch is
retrieved with ``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``, which includes ``/v1``, as the
openai SDK reads them), its error file then its output file are streamed to
``<prefix><batch_id>/errors.jsonl`` and ``output.jsonl``, and the log function's payload is
printed as JSON on stdout.

Exit codes: 0 copied; 1 a transient failure (OpenAI or S3 unreachable or failing after
retries, a download cut off: run it again); 2 unusable input (arguments, settings, the API key
refused, no such batch or file, a batch that is not finished). Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import orjson

from batchtrace.errors import InputError, OpenAIUnavailableError

EXIT_OK, EXIT_TRANSIENT, EXIT_USAGE = 0, 1, 2


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``fetch`` to the CLI's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "fetch",
        help="copy a finished OpenAI batch's output and error files into S3 (OPENAI_API_KEY, OPENAI_BASE_URL)",
        description=(
            "Copy a completed or expired OpenAI batch's error file, then its output file, into "
            "s3://BUCKET/<prefix><batch_id>/ and print the log function's payload as JSON."
        ),
    )
    parser.add_argument("--batch-id", required=True, help="the OpenAI batch id (batch_...)")
    parser.add_argument("--bucket", required=True, help="the S3 bucket the batch's folder is in")
    parser.add_argument(
        "--prefix",
        help="key prefix of batch folders, ending in '/' (default: BATCHTRACE_PREFIX, else batches/)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and retries to stderr")
    return parser


def _s3_exit_code(err: Exception) -> int:
    """2 for what a retry does not fix (no credentials, no such bucket, access denied), else 1."""
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return EXIT_USAGE
    if isinstance(err, ClientError):
        status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return EXIT_USAGE if 400 <= status < 500 and status not in (408, 429) else EXIT_TRANSIENT
    return EXIT_TRANSIENT


def _fetch(args: argparse.Namespace) -> dict[str, Any]:
    # Imported here: the openai SDK alone takes half a second to load, and `replay` needs none of it.
    from batchtrace.s3_batch import s3_client
    from batchtrace.sources.openai_files import Destination, FetchSettings, check_api_key, copy_batch_files

    settings = FetchSettings.from_env()
    destination = Destination(bucket=args.bucket, prefix=settings.prefix if args.prefix is None else args.prefix)
    client = settings.openai.client(check_api_key(os.environ.get("OPENAI_API_KEY", ""), "OPENAI_API_KEY"))
    return copy_batch_files(
        client, s3_client(), args.batch_id, destination, names=settings.names, transfer=settings.transfer
    )


def run(args: argparse.Namespace) -> int:
    """Copy the batch's files; the exit code (one line on stderr unless 0)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        payload = _fetch(args)
    except InputError as err:
        code, reason = EXIT_USAGE, str(err)
    except OpenAIUnavailableError as err:
        code, reason = EXIT_TRANSIENT, str(err)
    except (BotoCoreError, ClientError) as err:
        code, reason = _s3_exit_code(err), f"S3: {err}"
    else:
        sys.stdout.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK
    print(f"batchtrace: error: {' '.join(reason.split())}", file=sys.stderr)
    return code
