"""Where the test suite's time goes: every test's wall time, per test and per file.

CI must stay well under 15 minutes, and pytest's own `--durations` prints only when the whole suite ends, so a
run stopped by a timeout tells nothing. This runs pytest in-process with a recorder that appends each test's
setup/call/teardown seconds to bench/results/suite.jsonl as it finishes (a killed run keeps what it measured),
then sums them into bench/results/suite.json: the total, each file's share and the slowest tests.
Module-scoped fixtures (test_pipeline.py's smoke pipeline) are charged to the first test that uses them.

Run: python bench/bench_suite.py [pytest args...]   (e.g. `tests/test_pipeline.py`; default: the whole suite;
     `-n 2 --dist worksteal` as `make test` runs it: then each test's worker and the wall time are recorded)
     python bench/bench_suite.py --summarise        (re-sum suite.jsonl, e.g. after a killed run)
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))       # as `python -m pytest` from the root has it: tests import tests.test_report
from _common import RESULTS, write_results  # noqa: E402

LOG = RESULTS / "suite.jsonl"


class Recorder:
    """A pytest plugin: one JSON line per test phase, flushed at once."""

    def __init__(self, path: Path):
        self.out = path.open("w")

    def pytest_runtest_logreport(self, report):
        node = getattr(report, "node", None)          # under pytest-xdist, the worker that ran it
        worker = node.gateway.id if node is not None else "main"
        self.out.write(json.dumps({"test": report.nodeid, "phase": report.when, "seconds": round(report.duration, 3),
                                   "outcome": report.outcome, "at": round(time.time(), 1), "worker": worker}) + "\n")
        self.out.flush()


def summarise(lines: list[dict]) -> dict:
    per_test: dict[str, float] = defaultdict(float)
    outcome: dict[str, str] = {}
    for row in lines:
        per_test[row["test"]] += row["seconds"]
        if row["phase"] == "call" or row["outcome"] != "passed":
            outcome[row["test"]] = row["outcome"]
    per_file: dict[str, float] = defaultdict(float)
    for test, seconds in per_test.items():
        per_file[test.split("::")[0]] += seconds
    total = sum(per_test.values())
    stamps = [row["at"] for row in lines if "at" in row]
    per_worker: dict[str, float] = defaultdict(float)
    for row in lines:
        per_worker[row.get("worker", "main")] += row["seconds"]
    # under pytest-xdist the tests' seconds add up to more than the wall time; re-summed from the log,
    # `wall_seconds` is first to last report (main() replaces it with the whole session's)
    return {"tests": len(per_test), "total_seconds": round(total, 1),
            "wall_seconds": round(max(stamps) - min(stamps), 1) if stamps else None,
            "per_worker": {w: round(s, 1) for w, s in sorted(per_worker.items())},
            "per_file": [{"file": f, "seconds": round(s, 1), "share": round(s / total, 3)}
                         for f, s in sorted(per_file.items(), key=lambda kv: -kv[1])],
            "slowest": [{"test": t, "seconds": round(s, 1), "outcome": outcome.get(t, "?")}
                        for t, s in sorted(per_test.items(), key=lambda kv: -kv[1])[:40]]}


def main(argv: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    code = 0
    if argv[:1] != ["--summarise"]:
        import pytest

        recorder = Recorder(LOG)
        start = time.time()
        code = pytest.main(["-q", "-p", "no:cacheprovider", *argv], plugins=[recorder])
        recorder.out.close()
    lines = [json.loads(line) for line in LOG.read_text().splitlines() if line.strip()]
    result = {"args": argv, "exit_code": int(code), **summarise(lines)}
    if argv[:1] != ["--summarise"]:
        result["wall_seconds"] = round(time.time() - start, 1)      # collection and start-up included
    write_results("suite", [result])
    print(f"{result['tests']} tests, {result['total_seconds']:.0f} s of test time, {result['wall_seconds']} s wall; slowest file "
          f"{result['per_file'][0]['file']} ({result['per_file'][0]['seconds']:.0f} s)")
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
