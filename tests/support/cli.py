"""``batchtrace`` run as a user runs it: a subprocess, its exit code, its one-line errors, its JSON summary.

Every test that runs the CLI goes through :func:`run_batchtrace` (any subcommand, whatever the
exit code) or :func:`replay` (``batchtrace replay``: no traceback, the expected exit code, the
summary parsed). By default the command is ``python -m batchtrace.cli`` under this interpreter;
``script=True`` runs the installed console script instead, as a user types it. The environment is
this process's unless ``env`` replaces it, so the suite's fixtures (the OTLP receiver's endpoint,
scrubbed settings) reach the subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

#: How long one run may take before the test fails with its output (below the tests' own timeouts).
TIMEOUT_S = 50.0


def console_script() -> str:
    """The installed ``batchtrace`` console script: the one beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("batchtrace")
    found = str(beside) if beside.exists() else shutil.which("batchtrace")
    assert found, "the batchtrace console script is not installed"
    return found


def run_batchtrace(
    *args: str | Path,
    script: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``batchtrace ARGS`` in a subprocess, whatever its exit code; stdout and stderr as UTF-8 text.

    ``env`` is the whole environment of the subprocess (default: this process's);
    ``PYTHONIOENCODING=utf-8`` is added to it either way.
    """
    command = [console_script()] if script else [sys.executable, "-m", "batchtrace.cli"]
    return subprocess.run(
        [*command, *map(str, args)],
        env={**(os.environ if env is None else env), "PYTHONIOENCODING": "utf-8"},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def assert_exit(result: subprocess.CompletedProcess[str], code: int = 0) -> None:
    """No traceback, and exit ``code``."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON summary the command printed on stdout."""
    try:
        summary = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not the JSON summary:\n{result.stdout}\nstderr:\n{result.stderr}")
    assert isinstance(summary, dict)
    return summary


def replay(
    *args: str | Path,
    expect_exit: int = 0,
    script: bool = False,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """``batchtrace replay ARGS``: no traceback, exit ``expect_exit``; the process and its JSON summary."""
    result = run_batchtrace("replay", *args, script=script, env=env, timeout=timeout)
    assert_exit(result, expect_exit)
    return result, summary_of(result)


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr naming ``needles``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line reason, got:\n{result.stderr}"
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
