"""Every lab check is honest: it passes on the solution, fails on the unfilled lab and on plausible wrong answers."""

import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from utils import metrics
from utils.checks import CheckFailed, check, registered_checks
from utils.labs import answer_functions
from wrong_answers import WRONG_ANSWERS

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""")


def check_calls(folder: str) -> dict[str, tuple[Path, str]]:
    """check id -> (notebook, name of the function it checks), from every lab notebook in ``folder``."""
    calls = {}
    for path in sorted((ROOT / folder).glob("*_lab.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for check_id, function_name in CHECK_CALL.findall(cell.source):
                calls[check_id] = (path, function_name)
    return calls


SOLUTION_CALLS = check_calls("solutions")
LAB_CALLS = check_calls("labs")


def test_every_registered_check_is_used_by_a_solution_and_vice_versa():
    assert sorted(SOLUTION_CALLS) == registered_checks()


@pytest.mark.parametrize("check_id", registered_checks())
def test_solution_passes(check_id, capsys):
    path, name = SOLUTION_CALLS[check_id]
    check(check_id, answer_functions(path)[name])
    assert f"✓ {check_id} passed" in capsys.readouterr().out


@pytest.mark.parametrize("check_id", registered_checks())
def test_unfilled_lab_stub_fails(check_id):
    path, name = LAB_CALLS[check_id]
    stub = answer_functions(path)[name]  # the lab's cells: the stub that raises NotImplementedError
    with pytest.raises(CheckFailed, match="not answered yet"):
        check(check_id, stub)


def test_every_check_has_wrong_answers():
    missing = [check_id for check_id in registered_checks() if not WRONG_ANSWERS.get(check_id)]
    assert not missing, f"checks without plausible wrong answers in tests/wrong_answers: {missing}"


@pytest.mark.parametrize("check_id, wrong", [(check_id, wrong) for check_id, answers in WRONG_ANSWERS.items()
                                             for wrong in answers], ids=lambda value: getattr(value, "__name__", value))
def test_plausible_wrong_answer_fails_readably(check_id, wrong):
    with pytest.raises(CheckFailed) as failure:
        check(check_id, wrong)
    message = str(failure.value)
    assert message.startswith(f"check {check_id} failed:") and "\nHint: " in message
    assert len(message.splitlines()) <= 6, "failure messages stay short"


def test_a_check_rejects_a_non_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        check("01.roc_auc", 0.75)


def test_unknown_check_id_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown check '01.nope'"):
        check("01.nope", len)


def test_a_crashing_answer_is_reported_briefly():
    with pytest.raises(CheckFailed, match="your code raised ZeroDivisionError"):
        check("01.roc_auc", lambda y, s: 1 / 0)


def test_jupyter_shows_the_failure_without_a_traceback():
    with pytest.raises(CheckFailed) as failure:
        check("01.roc_auc", lambda y, s: 0.5)
    lines = failure.value._render_traceback_()
    assert "Traceback" not in "".join(lines) and "expected" in "".join(lines)


def test_lab01_examples_in_the_text_are_right():
    """The example calls quoted in lab 01's questions, computed with the reference implementations."""
    assert np.allclose(metrics.precision_recall_f1([0, 0, 1, 2], [0, 1, 1, 2], average="macro"),
                       (0.8333, 0.8333, 0.7778), atol=1e-4)
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.expected_calibration_error([0, 1, 1, 1], [0.25, 0.75, 0.75, 0.75]) == 0.25
    solution = answer_functions(ROOT / "solutions" / "01_evaluation_lab.ipynb")
    value = {"tp": 50, "fp": -10, "fn": 0, "tn": 0}
    assert solution["expected_value"](np.array([1, 0]), np.array([0.9, 0.6]), 0.5, value) == 20.0
    assert solution["best_threshold"](np.array([1, 0, 1]), np.array([0.2, 0.3, 0.9]), value) == 0.2


def test_lab03_examples_in_the_text_are_right():
    solution = answer_functions(ROOT / "solutions" / "03_overfitting_lab.ipynb")
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(5.0)
    assert solution["l2_penalty"](model).item() == 5.0
    image = torch.zeros(1, 64)
    image[0, :8] = torch.arange(1.0, 9.0)
    assert solution["shift"](image, 1, 0)[0, :8].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    folds = solution["stratified_kfold"](np.array([0, 0, 0, 1, 1, 1]), 3, 0)
    assert [sorted(np.array([0, 0, 0, 1, 1, 1])[val].tolist()) for _, val in folds] == [[0, 1]] * 3


def test_lab10_examples_in_the_text_are_right():
    solution = answer_functions(ROOT / "solutions" / "10_fairness_lab.ipynb")
    groups = np.array(["a", "a", "b", "b"])
    assert solution["selection_rates"](np.array([1, 0, 1, 1]), groups) == {"a": 0.5, "b": 1.0}
    assert solution["dp_difference"](np.array([1, 0, 1, 1]), groups) == 0.5
    assert solution["eo_difference"](np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]), groups) == 1.0
    weights = solution["reweighing"](np.array([1, 1, 0, 0]), np.array(["a", "a", "a", "b"]))
    assert np.allclose(weights, [0.75, 0.75, 1.5, 0.5])
    assert np.sum(np.array([0.1, 0.2, 0.3, 0.4, 0.5]) >= 0.4) == 2


def test_lab09_examples_in_the_text_are_right():
    solution = answer_functions(ROOT / "solutions" / "09_explainability_lab.ipynb")
    phi = solution["shapley"](lambda X: X[:, 0] + 2 * X[:, 1], np.array([1.0, 1.0]), np.zeros((3, 2)))
    assert np.allclose(phi, [1.0, 2.0])
    assert solution["weighted_r2"](np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), np.ones(3)) == 0.5
    model, x = torch.nn.Linear(4, 3), torch.tensor([1.0, -1.0, 2.0, 0.5])
    attributions = solution["integrated_gradients"](model, x, torch.zeros(4), 3, 1)
    assert torch.allclose(attributions, model.weight[1].detach() * x, atol=1e-6)


def test_lab11_examples_in_the_text_are_right():
    solution = answer_functions(ROOT / "solutions" / "11_privacy_lab.ipynb")
    assert round(solution["laplace"](100.0, 1.0, 1e9, np.random.default_rng(0)), 6) == 100.0
    rows = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert torch.allclose(solution["privatize"](rows, 1.0, 0.0, torch.Generator()), torch.tensor([0.9, 1.2]))
    table = pd.DataFrame({"age": ["30s", "30s", "40s"], "zip": ["021", "021", "022"]})
    assert solution["k_of"](table, ["age", "zip"]) == 1
    key = bytes(range(32))
    digest = solution["pseudonym"]("204817", key)
    assert len(digest) == 64 and digest != solution["pseudonym"]("204817", bytes(32))


def test_lab08_examples_in_the_text_are_right():
    solution = answer_functions(ROOT / "solutions" / "08_compression_lab.ipynb")
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -3.0], [2.0, 0.5]]))
    assert solution["global_mask"](layer, 0.5)["weight"].tolist() == [[False, True], [True, False]]
    q, scale = solution["quantize"](torch.tensor([[1.0, -0.5], [100.0, 50.0]]))
    assert q.tolist() == [[127, -64], [127, 64]] and torch.allclose(scale.flatten(), torch.tensor([1 / 127, 100 / 127]))
    logits, targets = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    loss = solution["distill_loss"](logits, logits, targets, 4.0, 0.3)
    assert loss.item() == pytest.approx(0.7 * torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)
    full = solution["svd_linear"](layer, 2)
    x = torch.randn(3, 2)
    assert torch.allclose(full(x), layer(x), atol=1e-5)


def test_lab14_examples_in_the_text_are_right(tmp_path):
    from pydantic import ValidationError

    solution = answer_functions(ROOT / "solutions" / "14_deployment_lab.ipynb")
    schema = solution["PredictRequest"]
    schema.model_validate({"instances": [[0.5] * 64]})
    with pytest.raises(ValidationError):
        schema.model_validate({"instances": [[float("nan")] * 64]})
    assert solution["tail_latency"](np.arange(1, 101)) == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    (tmp_path / "f").write_bytes(b"abc")
    assert solution["file_sha256"](tmp_path / "f").startswith("ba7816bf")
