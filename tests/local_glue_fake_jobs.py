"""Tiny stand-ins for Glue job scripts, run by the local job service in tests (never Spark).

``python -m local_glue_fake_jobs --mode ok|fail|exit|sleep [--out FILE] [--seconds S] ...`` with the
Glue-style arguments the runner adds (--JOB_NAME, --JOB_RUN_ID) ignored like getResolvedOptions does.
``--out`` receives the argv the script got, as JSON.
"""

from __future__ import annotations

import argparse
import atexit
import json
import sys
import time


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, choices=["ok", "fail", "exit", "sleep"])
    parser.add_argument("--out")
    parser.add_argument("--seconds", type=float, default=30.0)
    args, _unknown = parser.parse_known_args(argv)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump({"argv": argv}, handle)
    if args.mode == "ok":
        print("fake job: done")
        return 0
    if args.mode == "fail":
        # Like a Spark job: log noise on stderr, the traceback, then shutdown-hook lines after it.
        print("fake job: reading partitions")
        print("25/02/03 10:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library", file=sys.stderr)
        atexit.register(
            print, "25/02/03 10:00:01 INFO ShutdownHookManager: Shutdown hook called", file=sys.stderr, flush=True
        )
        raise ValueError("refined partition 2025-02-03 has no rows")
    if args.mode == "exit":
        print("fake job: checking input")
        print("no such index: XYZW", file=sys.stderr)
        return 3
    print("fake job: sleeping", flush=True)
    time.sleep(args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
