"""Build ``labs/`` from ``solutions/``: the solution notebook is the single source of each lab.

Code between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's markers) becomes
``# YOUR CODE HERE`` / ``raise NotImplementedError``; a markdown answer between the same
markers becomes "*Your answer here.*". Outputs are stripped.

    python -m utils.labs build   # write labs/ from solutions/
    python -m utils.labs check   # exit 1, naming the notebooks, when labs/ is stale
    python -m utils.labs setup   # copy each lab into workspace/ unless it is already there (never overwrites)
    python -m utils.labs serve   # JupyterLab over the whole course (what `make lab` runs, after setup)
"""

from __future__ import annotations

import argparse
import ast
import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from utils import colab, course

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError")
MARKDOWN_STUB = "*Your answer here.*"
ROOT = course.ROOT
BANNER = ("> **Lab notebook.** Generated from `solutions/{name}` by `python -m utils.labs build`; "
          "fill in every `# YOUR CODE HERE` and run each check.")


class LabFormatError(ValueError):
    """A solution notebook's markers are unbalanced."""


def strip_solution(source: str, cell_type: str = "code", where: str = "cell") -> str:
    """Replace every marked solution block in ``source`` by the stub, keeping its indentation."""
    out, inside = [], False
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise LabFormatError(f"{where}: '{BEGIN}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + stub for stub in (CODE_STUB if cell_type == "code" else (MARKDOWN_STUB,)))
        elif marker == END:
            if not inside:
                raise LabFormatError(f"{where}: '{END}' without a matching '{BEGIN}'")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise LabFormatError(f"{where}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def build_lab(solution: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The lab notebook for a solution notebook: solutions stubbed, outputs cleared, a banner on top."""
    lab = colab.strip_badges(copy.deepcopy(solution))   # the solution's badge opens the solution
    for index, cell in enumerate(lab.cells):
        cell.source = strip_solution(cell.source, cell.cell_type, where=f"{name} cell {index}")
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    banner = BANNER.format(name=name)
    if course.REPOSITORY:
        banner += "\n\n" + colab.badge(f"labs/{name}", course.REPOSITORY, course.BRANCH)
    lab.cells.insert(0, nbformat.v4.new_markdown_cell(banner))
    for index, cell in enumerate(lab.cells):
        cell.id = f"lab-{index:03d}"  # stable ids: a rebuild of the same solution is byte-identical
    return lab


def lab_text(solution_path: Path) -> str:
    """The exact text ``labs/`` should hold for ``solution_path``."""
    solution = nbformat.read(solution_path, as_version=4)
    return nbformat.writes(build_lab(solution, solution_path.name)) + "\n"


def expected_labs(root: Path = ROOT) -> dict[Path, str]:
    """Every lab path with the text it should hold."""
    return {root / "labs" / path.name: lab_text(path) for path in sorted((root / "solutions").glob("*_lab.ipynb"))}


def build(root: Path = ROOT) -> list[Path]:
    """Write every lab from its solution; return the paths written."""
    (root / "labs").mkdir(exist_ok=True)
    labs = expected_labs(root)
    for path, text in labs.items():
        path.write_text(text, encoding="utf-8")
    return list(labs)


def stale_labs(root: Path = ROOT) -> list[str]:
    """Problems with ``labs/``: labs that differ from their solution, are missing, or have no solution."""
    labs = expected_labs(root)
    problems = [f"{path.relative_to(root)} is missing" if not path.exists() else
                f"{path.relative_to(root)} differs from its solution"
                for path, text in labs.items()
                if not path.exists() or path.read_text(encoding="utf-8") != text]
    problems += [f"{path.relative_to(root)} has no solution in solutions/"
                 for path in sorted((root / "labs").glob("*.ipynb")) if path not in labs]
    return problems


def _only_imports(source: str) -> bool:
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return False
    return bool(body) and all(isinstance(node, (ast.Import, ast.ImportFrom)) for node in body)


def answer_functions(path: Path) -> dict[str, object]:
    """Run only the import cells and the answer cells (solutions, or a lab's stubs); return what they define.

    The tests of the checks use it to get the solution's (or the stub's) functions without running the lab.
    """
    notebook = nbformat.read(path, as_version=4)
    namespace: dict[str, object] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code" and (BEGIN in cell.source or CODE_STUB[0] in cell.source
                                         or _only_imports(cell.source)):
            exec(compile(cell.source, f"{path.name}", "exec"), namespace)
    return {name: value for name, value in namespace.items() if callable(value) and not name.startswith("_")}


def setup(root: Path = ROOT) -> tuple[list[Path], list[Path]]:
    """Copy every lab into ``workspace/`` unless a file of that name is there; (copied, kept as they were).

    The learner's answers live in ``workspace/``, so an existing file is never touched, whatever it holds. This
    replaces ``cp -n``, whose exit status changed in GNU coreutils 9.2 (1 when a file exists: the second
    ``make lab`` stopped there). The copy opens the target with exclusive creation, so even a file created
    between the check and the copy is not overwritten.
    """
    workspace = root / "workspace"
    workspace.mkdir(exist_ok=True)
    copied, kept = [], []
    for lab in sorted((root / "labs").glob("*.ipynb")):
        target = workspace / lab.name
        try:
            with open(target, "xb") as out:
                out.write(lab.read_bytes())
        except FileExistsError:
            kept.append(target)
            continue
        copied.append(target)
    return copied, kept


def serve_command(root: Path = ROOT, *, port: int | None = None, open_browser: bool = True) -> list[str]:
    """The JupyterLab command ``make lab`` runs: served from the repository root, so that notebooks/, labs/,
    solutions/ and the learner's workspace/ are all in the file browser, opening lesson 00."""
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={root}",
               "--LabApp.default_url=/lab/tree/notebooks/00_start_here.ipynb"]
    if port is not None:
        command.append(f"--ServerApp.port={port}")
    if not open_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m utils.labs", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "check", "setup", "serve"])
    args = parser.parse_args(argv)
    if args.command == "setup":
        copied, kept = setup()
        print(f"workspace/: copied {len(copied)} labs, kept {len(kept)} already there (never overwritten)")
        return 0
    if args.command == "serve":
        (ROOT / "workspace").mkdir(exist_ok=True)
        return subprocess.call(serve_command())
    if args.command == "build":
        for path in build():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    problems = stale_labs()
    if problems:
        print("labs/ is out of date with solutions/:", *problems, sep="\n  ", file=sys.stderr)
        print("Run `python -m utils.labs build` (or `make labs`) and commit the result.", file=sys.stderr)
        return 1
    print(f"labs/ is up to date ({len(expected_labs())} labs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
