"""The timing claims under load: the notebooks that assert wall-clock comparisons, executed several times with
their test parameters while another process keeps a CPU core busy. Every run must pass.

Not part of ``make test`` (it multiplies those notebooks' cost); ``make test-load`` runs it:

    BML_UNDER_LOAD=3 pytest -n 1 tests/test_under_load.py     # 3 runs of each, one at a time, beside a busy core

Executed copies land in ``build/under-load/``.
"""

import os

import papermill
import pytest

from conftest import ROOT, busy_core
from utils import course

TIMING_CALLS = ("bench.assert_ratio", "bench.require")
RUNS = int(os.environ.get("BML_UNDER_LOAD", "0"))
OUT_DIR = ROOT / "build" / "under-load"

pytestmark = pytest.mark.skipif(RUNS < 1, reason="set BML_UNDER_LOAD=N (make test-load) to run these N times")


@pytest.fixture(scope="module")
def busy_core_process():
    """One process that keeps a core busy while the notebooks run."""
    with busy_core() as process:
        yield process


def timing_notebooks() -> list:
    """The lessons whose cells assert a wall-clock comparison (speed-up, latency percentile, throughput): every such
    assert goes through utils.bench, so they are the lessons that call it."""
    return [lesson.notebook for lesson in course.LESSONS if lesson.notebook.is_file()
            and any(call in lesson.notebook.read_text(encoding="utf-8") for call in TIMING_CALLS)]


@pytest.mark.parametrize("run", range(max(RUNS, 1)), ids=lambda r: f"run{r + 1}")
@pytest.mark.parametrize("path", timing_notebooks(), ids=lambda p: p.name)
def test_timing_notebook_passes_under_load(path, run, busy_core_process):
    assert busy_core_process.is_alive()
    output = OUT_DIR / f"{path.stem}.run{run + 1}.ipynb"
    output.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(path), str(output), parameters=course.injected_parameters(path),
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False,
                               execution_timeout=600)
