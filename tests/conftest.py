"""Shared test set-up: threads per kernel, and the benchmark table printed at the end of the run."""

import contextlib
import json
import multiprocessing
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "build" / "benchmark"
DEFAULT_PARAMETERS = os.environ.get("BML_DEFAULT_PARAMETERS") == "1"

if not DEFAULT_PARAMETERS:
    # Two xdist workers share two cores: one thread per notebook kernel avoids oversubscription. Torch reads
    # BML_NUM_THREADS (utils.repro); OpenMP (scikit-learn's gradient boosting) and the BLAS libraries behind
    # NumPy and scikit-learn start one thread per core unless told, and spin while the other worker holds the
    # second core: a gradient-boosting fit measured 2 s alone took 30 s that way.
    for variable in ("BML_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller, not an xdist worker
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        for old in BENCH_DIR.glob("*.jsonl"):
            old.unlink()


def record_benchmark(row: dict) -> None:
    """Append one notebook's timing to this worker's file; the controller prints them all."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(BENCH_DIR / f"{worker}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if hasattr(config, "workerinput"):
        return
    rows = [json.loads(line) for path in sorted(BENCH_DIR.glob("*.jsonl")) for line in path.read_text().splitlines()]
    if not rows:
        return
    mode = "default parameters" if DEFAULT_PARAMETERS else "test parameters"
    terminalreporter.section(f"notebook benchmark ({mode}; reported, not asserted)")
    terminalreporter.write_line(f"{'notebook':<42} {'result':<8} {'wall s':>8} {'peak MB':>9}")
    for row in sorted(rows, key=lambda r: r["notebook"]):
        terminalreporter.write_line(
            f"{row['notebook']:<42} {row['result']:<8} {row['seconds']:>8.1f} {row['peak_mb']:>9.0f}")
    terminalreporter.write_line(f"{'total':<42} {'':<8} {sum(r['seconds'] for r in rows):>8.1f}")


def _burn(stop) -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i * i


@contextlib.contextmanager
def busy_core():
    """One process that keeps a CPU core busy while the block runs (timing claims must hold beside it)."""
    stop = multiprocessing.Event()
    process = multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
    process.start()
    try:
        yield process
    finally:
        stop.set()
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
