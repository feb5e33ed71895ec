"""The lab builder: stubs replace solutions, labs/ is in sync, broken markers are reported."""

import nbformat
import pytest

from utils import labs


def test_code_solution_becomes_an_indented_stub():
    source = "def f(x):\n    '''Doc.'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n"
    assert labs.strip_solution(source) == "def f(x):\n    '''Doc.'''\n    # YOUR CODE HERE\n    raise NotImplementedError"


def test_markdown_answer_is_hidden():
    source = "Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION"
    assert labs.strip_solution(source, "markdown") == "Why?\n*Your answer here.*"


def test_text_outside_markers_is_kept():
    assert labs.strip_solution("x = 1\nprint(x)") == "x = 1\nprint(x)"


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a matching"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
])
def test_unbalanced_markers_are_reported(source, message):
    with pytest.raises(labs.LabFormatError, match=message):
        labs.strip_solution(source, where="demo cell 3")


def test_build_strips_outputs_and_is_deterministic():
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    cell.outputs = [nbformat.v4.new_output("stream", text="1")]
    cell.execution_count = 3
    solution = nbformat.v4.new_notebook(cells=[cell])
    first, second = labs.build_lab(solution, "demo_lab.ipynb"), labs.build_lab(solution, "demo_lab.ipynb")
    assert nbformat.writes(first) == nbformat.writes(second)
    code = first.cells[1]
    assert code.outputs == [] and code.execution_count is None and "raise NotImplementedError" in code.source
    assert "solutions/demo_lab.ipynb" in first.cells[0].source


def test_labs_folder_is_in_sync_with_solutions():
    assert labs.stale_labs() == [], "run `python -m utils.labs build` and commit labs/"


def test_check_command_names_stale_and_orphan_labs(tmp_path, capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "labs").mkdir()
    solution = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    nbformat.write(solution, tmp_path / "solutions" / "07_demo_lab.ipynb")
    nbformat.write(solution, tmp_path / "labs" / "07_demo_lab.ipynb")  # edited by hand: still holds the answer
    nbformat.write(solution, tmp_path / "labs" / "08_orphan_lab.ipynb")
    problems = labs.stale_labs(tmp_path)
    assert problems == ["labs/07_demo_lab.ipynb differs from its solution",
                        "labs/08_orphan_lab.ipynb has no solution in solutions/"]
    labs.build(tmp_path)
    assert labs.stale_labs(tmp_path) == ["labs/08_orphan_lab.ipynb has no solution in solutions/"]


def test_cli_check_exits_zero_when_in_sync(capsys):
    assert labs.main(["check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_make_lab_serves_the_whole_course_with_the_learners_workspace():
    """`make lab` runs labs.serve_command(): the file browser must reach notebooks/ and workspace/, not only one."""
    import json
    import subprocess
    import time
    import urllib.request

    from utils.serving import free_port

    (labs.ROOT / "workspace").mkdir(exist_ok=True)
    port = free_port()
    command = labs.serve_command(port=port, open_browser=False) + ["--IdentityProvider.token=", "--ServerApp.password="]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, names = time.monotonic() + 120, None
        while time.monotonic() < deadline and names is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5) as response:
                    names = {item["name"] for item in json.load(response)["content"]}
            except OSError:
                assert server.poll() is None, "jupyter lab exited before it served"
                time.sleep(0.5)
        assert names is not None, "jupyter lab did not answer within 120 s"
        assert {"notebooks", "workspace", "labs", "solutions"} <= names
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def test_setup_copies_missing_labs_and_never_overwrites_the_learners_work(tmp_path, monkeypatch):
    """`make lab`'s copy step runs twice without failing (no `cp`: coreutils 9.2-9.4's `cp -n` exits 1 then)."""
    import shutil
    import subprocess

    def no_cp(*args, **kwargs):
        raise AssertionError(f"setup must not run a command: {args}")

    monkeypatch.setattr(subprocess, "run", no_cp)
    monkeypatch.setattr(subprocess, "call", no_cp)
    monkeypatch.setattr(shutil, "which", lambda name: None)   # as if no `cp` were installed
    (tmp_path / "labs").mkdir()
    for name in ("01_a_lab.ipynb", "02_b_lab.ipynb"):
        (tmp_path / "labs" / name).write_text(f"lab {name}", encoding="utf-8")
    copied, kept = labs.setup(tmp_path)
    workspace = tmp_path / "workspace"
    assert [p.name for p in copied] == ["01_a_lab.ipynb", "02_b_lab.ipynb"] and kept == []
    (workspace / "01_a_lab.ipynb").write_text("my answers", encoding="utf-8")
    (tmp_path / "labs" / "02_b_lab.ipynb").write_text("a newer lab", encoding="utf-8")
    (tmp_path / "labs" / "03_c_lab.ipynb").write_text("lab 3", encoding="utf-8")
    copied, kept = labs.setup(tmp_path)                       # the second `make lab`
    assert [p.name for p in copied] == ["03_c_lab.ipynb"]
    assert [p.name for p in kept] == ["01_a_lab.ipynb", "02_b_lab.ipynb"]
    assert (workspace / "01_a_lab.ipynb").read_text(encoding="utf-8") == "my answers"
    assert (workspace / "02_b_lab.ipynb").read_text(encoding="utf-8") == "lab 02_b_lab.ipynb"
    assert labs.setup(tmp_path) == ([], sorted(workspace.iterdir()))


def test_make_lab_copies_with_python_not_cp():
    makefile = (labs.ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nlab: ")[1].split("\n\n")[0]
    assert "utils.labs setup" in recipe and "cp " not in recipe
