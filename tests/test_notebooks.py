"""Execute every notebook with papermill: lessons and solutions must run clean, labs must stop at their first check.

Executed copies land in ``build/executed/``. Each run's wall time and the kernel's peak memory
go into the benchmark table printed at the end of the session.
"""

import threading
import time
from pathlib import Path

import nbformat
import papermill
import psutil
import pytest
from papermill.exceptions import PapermillExecutionError

from conftest import DEFAULT_PARAMETERS, ROOT, record_benchmark
from utils import course

OUT_DIR = ROOT / "build" / "executed"
LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "solutions").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*.ipynb"))


class PeakMemory:
    """Samples the resident memory of this process's children (the kernel) in a background thread."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_notebook(path: Path) -> None:
    """Execute ``path`` with its test (or default) parameters and record the benchmark row."""
    parameters = {} if DEFAULT_PARAMETERS else course.injected_parameters(path)
    output = OUT_DIR / path.parent.name / path.name
    output.parent.mkdir(parents=True, exist_ok=True)
    start, result = time.perf_counter(), "error"
    with PeakMemory() as memory:
        try:
            papermill.execute_notebook(str(path), str(output), parameters=parameters, kernel_name="python3",
                                       cwd=str(path.parent), progress_bar=False, execution_timeout=600)
            result = "ok"
        except PapermillExecutionError as error:
            result = "stopped" if error.ename == "CheckFailed" else "error"
            raise
        finally:
            record_benchmark({"notebook": f"{path.parent.name}/{path.name}", "result": result[:8],
                              "seconds": time.perf_counter() - start, "peak_mb": memory.peak / 2**20})


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_runs_clean(path):
    run_notebook(path)


@pytest.mark.parametrize("path", LABS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_unfilled_lab_stops_at_its_first_check(path, monkeypatch):
    """"Run All" on an unfilled lab stops at its first check with CheckFailed, and nothing breaks before it.

    Run in this process, cell by cell, rather than in a fresh kernel: the kernel start-up (5 to 8 s a lab) buys
    nothing here, since test_notebook_runs_clean already runs every lab's cells, answers filled, in a kernel.
    """
    from utils.checks import CheckFailed

    monkeypatch.chdir(path.parent)
    namespace = {"__name__": "__main__"}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            exec(compile(cell.source, path.name, "exec"), namespace)
        except CheckFailed as failure:
            assert "not answered yet" in str(failure), str(failure)
            return
    pytest.fail(f"{path.name} ran to the end without a check stopping it")
