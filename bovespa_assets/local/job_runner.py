"""Runs one local Glue job run: ``python -m bovespa_assets.local.job_runner <record_path>``.

Started detached by :class:`bovespa_assets.local.glue_jobs.LocalGlueJobs` (its own session, output to
the run's log file), so it carries on when the process that started it exits. It marks the run
RUNNING with its pid, runs ``python -m <module> --key value ...`` as Glue runs a job script, copies
the script's stdout/stderr into the run's log and records the outcome: SUCCEEDED on exit status 0,
STOPPED when asked to stop (SIGTERM), FAILED otherwise with the script's error message (the exception
line of its last traceback, else its last stderr line).

This module also holds the run-record helpers :mod:`glue_jobs` uses (standard library only, so the
runner starts fast). A record is one JSON file written atomically (temp file + rename); every
read-modify-write of a record holds the job's lock file, and the runner holds ``runner.lock`` in the
run's folder for as long as it lives, which tells a live runner from a dead one even after a reboot
or when its pid was reused.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: liveness falls back to the pid check alone
    fcntl = None  # type: ignore[assignment]

ACTIVE_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "STOPPED", "ERROR", "TIMEOUT"})
LOCAL = "_local"  # record key for what only the local service needs (module, argv, pid); never returned
MAX_ERROR_CHARS = 1000
STDERR_TAIL_LINES = 2000

_TRACEBACK = "Traceback (most recent call last):"
# Timestamped log lines (log4j "25/02/03 10:00:00 INFO ...", logging "2025-02-03 10:00:00,123 ...").
_LOG_LINE = re.compile(r"^\d{2,4}[-/]\d{2}[-/]\d{2}[ T]\d{2}:\d{2}:\d{2}")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


# -- records -----------------------------------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def run_dir(record_path: Path) -> Path:
    """The run's folder (log, runner lock) next to its record: <job>/<run_id>/."""
    return record_path.with_suffix("")


def job_lock_path(record_path: Path) -> Path:
    return record_path.parent / ".lock"


def runner_lock_path(record_path: Path) -> Path:
    return run_dir(record_path) / "runner.lock"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (not re-entrant: never nest two on the same file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def read_record(record_path: Path) -> dict[str, Any]:
    return json.loads(record_path.read_text(encoding="utf-8"))


def write_record(record_path: Path, record: Mapping[str, Any]) -> None:
    """Atomically replace the record: readers see the old or the new file, never a part."""
    fd, temp = tempfile.mkstemp(dir=record_path.parent, prefix=f".{record_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, record_path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def update_record(record_path: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read, change and write the record under the job's lock; returns the record as written."""
    with locked(job_lock_path(record_path)):
        record = read_record(record_path)
        change(record)
        record["LastModifiedOn"] = now_iso()
        write_record(record_path, record)
    return record


def finish(record: dict[str, Any], state: str, error_message: str | None = None) -> None:
    """Put the record in a final state: CompletedOn, whole-second ExecutionTime as Glue reports it."""
    completed = datetime.now(UTC)
    record["JobRunState"] = state
    record["CompletedOn"] = completed.isoformat(timespec="microseconds")
    started = datetime.fromisoformat(record["StartedOn"])
    record["ExecutionTime"] = max(0, round((completed - started).total_seconds()))
    if error_message:
        record["ErrorMessage"] = error_message


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runner_lock_held(record_path: Path) -> bool:
    """Whether a live runner holds the run's lock (unknown without fcntl: then assume it does)."""
    if fcntl is None:
        return True
    try:
        handle = open(runner_lock_path(record_path), "rb")  # noqa: SIM115 - closed by the `with` below
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def glue_argv(arguments: Mapping[str, str]) -> list[str]:
    """Job arguments flattened as Glue passes them to a script: --key value --key value ..."""
    argv: list[str] = []
    for key, value in arguments.items():
        argv += [key, value]
    return argv


# -- error message -----------------------------------------------------------------------------------


def error_message(stderr_lines: Iterable[str], returncode: int) -> str:
    """What went wrong, from the script's stderr: the exception of its last traceback, else its last line.

    Lines printed after the traceback by shutdown hooks (Spark logs a few) are skipped.
    """
    lines = [line.rstrip() for line in stderr_lines]
    message = _last_exception(lines) or _last_plain_line(lines)
    if not message:
        if returncode < 0:
            with contextlib.suppress(ValueError):
                return f"job process killed by signal {signal.Signals(-returncode).name}"
            return f"job process killed by signal {-returncode}"
        message = f"job process exited with status {returncode}"
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return message


def _last_exception(lines: list[str]) -> str | None:
    starts = [i for i, line in enumerate(lines) if line.strip() == _TRACEBACK]
    if not starts:
        return None
    collected: list[str] = []
    for line in lines[starts[-1] + 1:]:
        if not collected:
            if not line.strip() or line[:1].isspace():
                continue  # frames, source lines, carets
            collected.append(line)
            continue
        if not line.strip() or _LOG_LINE.match(line) or line.startswith(("During handling", "The above exception")):
            break
        collected.append(line)
        if len(collected) >= 20:
            break
    return "\n".join(collected) or None


def _last_plain_line(lines: list[str]) -> str | None:
    candidates = [line.strip() for line in lines if line.strip()]
    for line in reversed(candidates):
        if _EXCEPTION_LINE.match(line):
            return line
    for line in reversed(candidates):
        if not _LOG_LINE.match(line):
            return line
    return candidates[-1] if candidates else None


# -- the runner --------------------------------------------------------------------------------------


class _NotStarting(Exception):
    """The run left STARTING before the runner got to it (stopped, or given up on)."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the job process gets SIGTERM if the runner dies, so a killed runner leaves no orphan job."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run(record_path: Path) -> int:
    record_path = record_path.resolve()
    run_dir(record_path).mkdir(parents=True, exist_ok=True)
    lock_handle = open(runner_lock_path(record_path), "a+b")  # noqa: SIM115 - held (locked) until the runner exits
    if fcntl is not None:
        try:
            fcntl.flock(lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another runner already runs {record_path.stem}", file=sys.stderr)
            return 1

    def mark_running(record: dict[str, Any]) -> None:
        if record["JobRunState"] != "STARTING":
            raise _NotStarting(record["JobRunState"])
        record["JobRunState"] = "RUNNING"
        record[LOCAL]["pid"] = os.getpid()

    try:
        record = update_record(record_path, mark_running)
    except _NotStarting as exc:
        print(f"run {record_path.stem} is {exc}, not STARTING: nothing to run", file=sys.stderr)
        return 1

    stop = {"requested": False}
    child: subprocess.Popen[bytes] | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stop["requested"] = True
        if child is not None and child.poll() is None:
            child.terminate()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, on_signal)

    module, argv = record[LOCAL]["module"], record[LOCAL]["argv"]
    command = [sys.executable, "-m", module, *argv]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
    try:
        with open(record["LogPath"], "ab", buffering=0) as log:
            log.write(f"[local glue] {record['JobName']} {record['Id']}: {' '.join(command)}\n".encode())
            child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.PIPE, env=env,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            if stop["requested"]:
                child.terminate()
            assert child.stderr is not None
            for raw in child.stderr:
                log.write(raw)
                tail.append(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            returncode = child.wait()
            log.write(f"[local glue] {record['Id']} exited with status {returncode}\n".encode())
    except Exception as exc:  # the runner's own failure (cannot start the script, log unwritable...)
        message = f"local job runner failed: {type(exc).__name__}: {exc}"
        update_record(record_path, lambda r: finish(r, "FAILED", message))
        return 1

    if returncode == 0:
        update_record(record_path, lambda r: finish(r, "SUCCEEDED"))
    elif stop["requested"]:
        update_record(record_path, lambda r: finish(r, "STOPPED"))
    else:
        message = error_message(tail, returncode)
        update_record(record_path, lambda r: finish(r, "FAILED", message))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bovespa_assets.local.job_runner <record_path>", file=sys.stderr)
        return 2
    return run(Path(args[0]))


if __name__ == "__main__":
    sys.exit(main())
