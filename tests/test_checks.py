"""Every lab check is honest: it passes on the solution and fails on the unfilled lab, on each of its listed
mistakes (with that mistake's own hint), on an answer that changes its inputs, on a wrong return type, shape
or dtype, and on an answer that ignores its seed."""

import ast
import importlib
import inspect
import math
import pkgutil
import re
import sys
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

import utils
from utils import metrics
from utils.checks import CheckFailed, check, registered_checks, spec_of
from utils.checks.core import (CRASH_HINT, DETACHED_HINT, GLOBAL_RANDOM_HINT, GRAD_HINT, MODE_HINT, REQUIRES_GRAD_HINT, _call, OTHER_SEED_HINT, SAME_SEED_HINT, Case, Checker, Mistake, Spec, mutation_hint,
                               same, snapshot)
from utils.labs import answer_functions

ROOT = Path(__file__).resolve().parent.parent
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']\s*,\s*(\w+)\s*\)""")
# A reference that is not a plain utils function of the same name, and where it lives instead.
# Checks whose reference draws from torch's global generator (it builds nn.Linear layers): there the learner may too.
REFERENCES_USING_GLOBAL_RANDOMNESS = ["07.LoRALinear", "08.low_rank_linear"]
BUILT_ELSEWHERE = {"14.PredictRequest": "serving.request_schema(64, 64) builds the service's schema class"}


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
_SOLUTIONS: dict[Path, dict] = {}


def solution(check_id: str):
    path, name = SOLUTION_CALLS[check_id]
    if path not in _SOLUTIONS:
        _SOLUTIONS[path] = answer_functions(path)
    return _SOLUTIONS[path][name]


def failure_of(check_id: str, answer) -> CheckFailed:
    with pytest.raises(CheckFailed) as failure:
        check(check_id, answer)
    message = str(failure.value)
    assert message.startswith(f"check {check_id} failed:") and "\nHint: " in message
    assert len(message.splitlines()) <= 6, f"failure messages stay short:\n{message}"
    return failure.value


def is_class_check(check_id: str) -> bool:
    return isinstance(solution(check_id), type)


# --- the registry and names ---

def test_every_registered_check_is_used_by_a_solution_and_vice_versa():
    assert sorted(SOLUTION_CALLS) == registered_checks()


@pytest.mark.parametrize("check_id", registered_checks())
def test_one_name_per_concept(check_id):
    """The lab function, its check id and its utils reference share one name."""
    name = check_id.split(".", 1)[1]
    assert SOLUTION_CALLS[check_id][1] == name, f"the lab calls it {SOLUTION_CALLS[check_id][1]}, the check {name}"
    if check_id in BUILT_ELSEWHERE:
        return
    homes = [info.name for info in pkgutil.iter_modules(utils.__path__)
             if info.name not in ("checks", "labs") and hasattr(importlib.import_module(f"utils.{info.name}"), name)]
    assert homes, f"no utils module defines {name}"


@pytest.mark.parametrize("check_id", registered_checks())
def test_every_check_lists_its_plausible_mistakes(check_id):
    mistakes = spec_of(check_id).mistakes
    assert len(mistakes) >= 2, "list the mistakes learners make, each with its hint"
    assert len({m.name for m in mistakes}) == len(mistakes)


# --- the right answer passes, the unfilled stub fails ---

@pytest.mark.parametrize("check_id", registered_checks())
def test_solution_passes(check_id, capsys):
    check(check_id, solution(check_id))
    assert f"✓ {check_id} passed" in capsys.readouterr().out


@pytest.mark.parametrize("check_id", registered_checks())
def test_unfilled_lab_stub_fails(check_id):
    path, name = LAB_CALLS[check_id]
    stub = answer_functions(path)[name]  # the lab's cells: the stub that raises NotImplementedError
    with pytest.raises(CheckFailed, match="not answered yet"):
        check(check_id, stub)


# --- each listed mistake fails with its own hint ---

@pytest.mark.parametrize("check_id, mistake", [(check_id, mistake) for check_id in registered_checks()
                                               for mistake in spec_of(check_id).mistakes],
                         ids=lambda value: getattr(value, "name", value))
def test_each_mistake_fails_with_its_own_hint(check_id, mistake):
    assert failure_of(check_id, mistake.answer).hint == mistake.hint


# --- inputs changed in place ---

def mutate(value) -> bool:
    """Change ``value`` in place, as a careless answer would; False if it holds no data to change."""
    if isinstance(value, torch.nn.Module):
        with torch.no_grad():
            next(value.parameters()).add_(1.0)
        return True
    if isinstance(value, torch.Tensor):
        value.data.view(-1)[0] += 1
        return True
    if isinstance(value, np.ndarray) and value.size and value.flags.writeable:
        if value.dtype.kind in "US":
            others = [v for v in np.unique(value) if v != value.flat[0]]
            if not others:
                return False
            value.flat[0] = others[0]
        elif value.dtype.kind == "b":
            value.flat[0] = not value.flat[0]
        else:
            value.flat[0] = value.flat[0] + 1
        return True
    if isinstance(value, pd.DataFrame):
        value.iloc[0, 0] = "changed"
        return True
    if isinstance(value, (dict, list)):
        value.append(0) if isinstance(value, list) else value.setdefault("changed", 0)
        return True
    return False


def mutating(answer):
    def changes_its_input(*args):
        result = answer(*args)
        for value in args:
            if mutate(value):
                break
        return result
    return changes_its_input


def first_case_args(check_id):
    spec = spec_of(check_id)
    if spec.fixture:
        pytest.skip("its inputs are files")
    return min((c for c in spec.cases() if c.raises is None), key=lambda c: c.size).args


@pytest.mark.parametrize("check_id", registered_checks())
def test_an_answer_that_changes_its_input_fails(check_id):
    data = [a for a in snapshot(first_case_args(check_id)) if isinstance(a, torch.nn.Module) or not callable(a)]
    if is_class_check(check_id) or not any(mutate(a) for a in data):
        pytest.skip("no input the answer could change")
    failure = failure_of(check_id, mutating(solution(check_id)))
    assert failure.hint.startswith("Your function changed its input")


# --- return type, shape, dtype ---

def wrong_type(result):
    if isinstance(result, torch.nn.Module):
        return dict(result.state_dict())
    if isinstance(result, torch.Tensor):
        return result.detach().numpy()
    if isinstance(result, np.ndarray):
        return result.tolist()
    if isinstance(result, (bool, np.bool_)):
        return int(result)
    if isinstance(result, (int, np.integer)):
        return float(result)
    if isinstance(result, (float, np.floating)):
        return np.array([result])
    if isinstance(result, str):
        return result.encode()
    if isinstance(result, tuple):
        return list(result)
    if isinstance(result, list):
        return tuple(result)
    if isinstance(result, dict):
        return list(result.values())
    raise AssertionError(f"no wrong type for {type(result).__name__}")


def wrong_shape_or_dtype(result):
    if isinstance(result, torch.Tensor):
        return result.double() if result.dtype != torch.float64 else result.float()
    if isinstance(result, np.ndarray):
        return result[None]
    if isinstance(result, tuple):
        return (wrong_shape_or_dtype(result[0]),) + result[1:]
    if isinstance(result, dict):
        first = next(iter(result))
        return {**result, first: wrong_shape_or_dtype(result[first])}
    if isinstance(result, list) and result:
        return result[:-1]
    return None


@pytest.mark.parametrize("check_id", registered_checks())
@pytest.mark.parametrize("change", [wrong_type, wrong_shape_or_dtype])
def test_a_wrong_return_type_shape_or_dtype_fails(check_id, change):
    if is_class_check(check_id):
        pytest.skip("a class: its methods' results are checked through what they do")
    answer = solution(check_id)
    args = first_case_args(check_id)
    if change is wrong_shape_or_dtype and spec_of(check_id).invoke is not _call:
        pytest.skip("its cases run the answer through the check's own invoke (a schedule, many draws)")
    if change is wrong_shape_or_dtype and change(answer(*snapshot(args))) is None:
        pytest.skip("a plain number or string has no shape or dtype")
    failure_of(check_id, lambda *a: change(answer(*a)))


# --- seeds ---

SEEDED = [check_id for check_id in registered_checks() if spec_of(check_id).seed]


def ignoring_seed(check_id, fresh_every_call: bool):
    answer, (position, make) = solution(check_id), spec_of(check_id).seed
    counter = iter(range(10**9))

    def ignores_its_seed(*args):
        seed = make(next(counter) + 7) if fresh_every_call else make(0)  # global randomness, or a fixed seed
        return answer(*args[:position], seed, *args[position + 1:])
    return ignores_its_seed


def test_seeded_checks_are_the_random_ones():
    assert SEEDED == ["02.smote", "03.stratified_kfold_indices", "05.shard_indices", "09.permutation_importance", "11.clip_and_noise",
                      "11.laplace_mechanism", "12.dirichlet_split", "12.pairwise_masks", "13.pgd", "16.reservoir_sample"]


@pytest.mark.parametrize("check_id", SEEDED)
def test_an_answer_that_uses_a_fixed_seed_fails(check_id):
    assert failure_of(check_id, ignoring_seed(check_id, fresh_every_call=False)).hint in (
        OTHER_SEED_HINT, spec_of(check_id).hint)


@pytest.mark.parametrize("check_id", SEEDED)
def test_an_answer_that_uses_global_randomness_fails(check_id):
    assert failure_of(check_id, ignoring_seed(check_id, fresh_every_call=True)).hint in (
        SAME_SEED_HINT, spec_of(check_id).hint)


# --- the framework itself ---

def test_a_check_rejects_a_non_function():
    with pytest.raises(CheckFailed, match="expected a function"):
        check("01.roc_auc", 0.75)


def test_unknown_check_id_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown check '01.nope'"):
        check("01.nope", len)


def test_a_crashing_answer_is_reported_briefly():
    failure = failure_of("01.roc_auc", lambda y, s: 1 / 0)
    assert "your code raised ZeroDivisionError" in failure.message and failure.hint == CRASH_HINT


def test_jupyter_shows_the_failure_without_a_traceback():
    with pytest.raises(CheckFailed) as failure:
        check("01.roc_auc", lambda y, s: 0.5)
    lines = failure.value._render_traceback_()
    assert "Traceback" not in "".join(lines) and "expected" in "".join(lines)


def _toy_spec(**extra):
    cases = lambda: [Case((np.arange(n, dtype=float),), f"{n} values", atol=1e-12) for n in (50, 3, 10)]
    return Spec("99.total", lambda v: float(v.sum()), cases, hint="Add them all up.", **extra)


def test_the_smallest_failing_case_is_shown():
    with pytest.raises(CheckFailed, match="for 10 values"):
        Checker(_toy_spec(), lambda v: float(v.sum()) if len(v) < 10 else 0.0).run()


def test_the_mistake_that_explains_every_answer_lends_its_hint():
    doubled = Mistake(lambda v: 2 * float(v.sum()), "You counted everything twice.")
    capped = Mistake(lambda v: 2 * float(v.sum()) if len(v) <= 3 else 0.0, "You stopped early.")
    with pytest.raises(CheckFailed) as failure:
        Checker(_toy_spec(mistakes=(capped, doubled)), lambda v: 2 * float(v.sum())).run()
    assert failure.value.hint == "You counted everything twice."  # capped also matches the smallest case only


def test_an_input_changed_in_place_is_named():
    def sorts_in_place(values):
        values.sort()
        values[0] = -1.0
        return float(values[1:].sum())
    with pytest.raises(CheckFailed) as failure:
        Checker(_toy_spec(), sorts_in_place).run()
    assert failure.value.hint == mutation_hint("values")


def test_a_one_element_array_is_not_a_float():
    with pytest.raises(CheckFailed, match="should be a single number"):
        Checker(_toy_spec(), lambda v: np.array([v.sum()])).run()


def test_a_validator_that_raises_type_error_is_a_verdict():
    from pydantic import BaseModel, ConfigDict, field_validator

    class Schema(BaseModel):
        model_config = ConfigDict(strict=True)
        instances: list[list[float]]

        @field_validator("instances")
        @classmethod
        def check_rows(cls, rows):
            if len(rows) != 1:
                raise TypeError("wrong number of rows")
            return rows
    failure = failure_of("14.PredictRequest", Schema)
    assert "raised TypeError" in failure.message and "Raise ValueError" in failure.hint


def test_checks_leave_no_temporary_files(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    check("14.sha256_of", solution("14.sha256_of"))
    assert not any(tmp_path.iterdir())


# --- examples quoted in the labs' text ---

def test_lab01_examples_in_the_text_are_right():
    """The example calls quoted in lab 01's questions, computed with the reference implementations."""
    assert np.allclose(metrics.precision_recall_f1([0, 0, 1, 2], [0, 1, 1, 2], average="macro"),
                       (0.8333, 0.8333, 0.7778), atol=1e-4)
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert metrics.expected_calibration_error([0, 1, 1, 1], [0.25, 0.75, 0.75, 0.75]) == 0.25
    value = {"tp": 50, "fp": -10, "fn": 0, "tn": 0}
    assert metrics.expected_value(np.array([1, 0]), np.array([0.9, 0.6]), 0.5, value) == 20.0
    assert metrics.best_threshold(np.array([1, 0, 1]), np.array([0.2, 0.3, 0.9]), value) == 0.2


def test_lab03_examples_in_the_text_are_right():
    from utils.augment import shift_images
    from utils.data import stratified_kfold_indices
    from utils.regularize import l2_penalty
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(5.0)
    assert l2_penalty(model).item() == 5.0
    image = torch.zeros(1, 64)
    image[0, :8] = torch.arange(1.0, 9.0)
    assert shift_images(image, 1, 0)[0, :8].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    y = np.array([0, 0, 0, 1, 1, 1])
    assert [sorted(y[val].tolist()) for _, val in stratified_kfold_indices(y, 3, 0)] == [[0, 1]] * 3


def test_lab08_examples_in_the_text_are_right():
    from utils import compression
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.1, -3.0], [2.0, 0.5]]))
    assert compression.global_mask(layer, 0.5)["weight"].tolist() == [[False, True], [True, False]]
    q, scale = compression.quantize_per_channel(torch.tensor([[1.0, -0.5], [100.0, 50.0]]))
    assert q.tolist() == [[127, -64], [127, 64]] and torch.allclose(scale.flatten(), torch.tensor([1 / 127, 100 / 127]))
    logits, targets = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    loss = compression.distillation_loss(logits, logits, targets, 4.0, 0.3)
    assert loss.item() == pytest.approx(0.7 * torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)
    x = torch.randn(3, 2)
    assert torch.allclose(compression.low_rank_linear(layer, 2)(x), layer(x), atol=1e-5)


def test_lab09_examples_in_the_text_are_right():
    from utils import explain
    phi = explain.exact_shapley(lambda X: X[:, 0] + 2 * X[:, 1], np.array([1.0, 1.0]), np.zeros((3, 2)))
    assert np.allclose(phi, [1.0, 2.0])
    assert explain.weighted_r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), np.ones(3)) == 0.5
    model, x = torch.nn.Linear(4, 3), torch.tensor([1.0, -1.0, 2.0, 0.5])
    attributions = explain.integrated_gradients(model, x, torch.zeros(4), steps=3, target=1)
    assert torch.allclose(attributions, model.weight[1].detach() * x, atol=1e-6)


def test_lab10_examples_in_the_text_are_right():
    from utils import fairness
    groups = np.array(["a", "a", "b", "b"])
    assert fairness.selection_rates(np.array([1, 0, 1, 1]), groups) == {"a": 0.5, "b": 1.0}
    assert fairness.demographic_parity_difference([1, 0, 1, 1], [1, 0, 1, 1], sensitive_features=groups) == 0.5
    assert fairness.equalized_odds_difference(np.array([1, 0, 1, 0]), np.array([1, 0, 0, 0]),
                                              sensitive_features=groups) == 1.0
    weights = fairness.reweighing_weights(np.array([1, 1, 0, 0]), np.array(["a", "a", "a", "b"]))
    assert np.allclose(weights, [0.75, 0.75, 1.5, 0.5])
    assert np.sum(np.array([0.1, 0.2, 0.3, 0.4, 0.5]) >= 0.4) == 2


def test_lab11_examples_in_the_text_are_right():
    from utils import privacy
    assert round(privacy.laplace_mechanism(100.0, 1.0, 1e9, np.random.default_rng(0)), 6) == 100.0
    rows = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    assert torch.allclose(privacy.clip_and_noise(rows, 1.0, 0.0, torch.Generator()), torch.tensor([0.9, 1.2]))
    table = pd.DataFrame({"age": ["30s", "30s", "40s"], "zip": ["021", "021", "022"]})
    assert privacy.k_anonymity(table, ["age", "zip"]) == 1
    key = bytes(range(32))
    digest = privacy.hmac_pseudonym("204817", key)
    assert len(digest) == 64 and digest != privacy.hmac_pseudonym("204817", bytes(32))


def test_lab14_examples_in_the_text_are_right(tmp_path):
    from pydantic import ValidationError

    from utils import bench, serving
    schema = solution("14.PredictRequest")
    schema.model_validate({"instances": [[0.5] * 64]})
    with pytest.raises(ValidationError):
        schema.model_validate({"instances": [[math.nan] * 64]})
    assert bench.percentiles(np.arange(1, 101)) == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    (tmp_path / "f").write_bytes(b"abc")
    assert serving.sha256_of(tmp_path / "f").startswith("ba7816bf")


# --- every check hands the same inputs whatever the caller's global random state ---

def _global_states():
    import random
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _same_states(a, b) -> bool:
    return a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1][1:], b[1][1:])) and torch.equal(a[2], b[2])


def _inputs(value):
    """A comparable record of a case's arguments: data as it is; generators by their state; functions and small
    objects (victim models, configs) by what they hold; files by their bytes."""
    import types
    if isinstance(value, (list, tuple)):
        return type(value)(_inputs(v) for v in value)
    if isinstance(value, dict):
        return {k: _inputs(v) for k, v in value.items()}
    if isinstance(value, torch.Generator):
        return value.get_state()
    if isinstance(value, np.random.Generator):
        return repr(value.bit_generator.state)
    if isinstance(value, Path):
        return value.read_bytes() if value.is_file() else str(value)
    if isinstance(value, types.FunctionType):
        cells = [c.cell_contents for c in value.__closure__ or ()]
        return ("function", value.__qualname__, _inputs(cells), _inputs(list(value.__defaults__ or ())))
    if isinstance(value, range):
        return ("range", value.start, value.stop, value.step)
    if hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, type)) and \
            not type(value).__module__.startswith(("onnxruntime", "pandas")):
        return (type(value).__qualname__, _inputs(dict(vars(value))))
    return value


def _generated(spec, seed, folder):
    import random
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    for module in list(sys.modules.values()):  # inputs cached per process are built again under this seed
        if getattr(module, "__name__", "").startswith("utils.checks.lesson"):
            for value in vars(module).values():
                if callable(getattr(value, "cache_clear", None)):
                    value.cache_clear()
    before = _global_states()
    cases = spec.cases(folder) if spec.fixture else spec.cases()
    assert _same_states(before, _global_states()), "generating the cases changed the caller's global random state"
    return [(case.label, _inputs(list(case.args))) for case in cases]


@pytest.mark.parametrize("check_id", registered_checks())
def test_cases_do_not_depend_on_the_global_random_state(check_id):
    """Python's, NumPy's and torch's global generators seeded 0 or 12345: the same cases, the same inputs."""
    import contextlib
    spec = spec_of(check_id)
    with (spec.fixture() if spec.fixture else contextlib.nullcontext()) as folder:
        first, second = _generated(spec, 0, folder), _generated(spec, 12345, folder)
    assert [label for label, _ in first] == [label for label, _ in second]
    for (label, a), (_, b) in zip(first, second):
        assert same(a, b), f"{check_id}: the inputs of {label!r} depend on the global random state"


# --- side effects: the caller's global random state, input gradients, modes, detached results ---

def test_an_answer_that_seeds_the_global_generator_fails_and_the_state_is_given_back():
    import random
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    before = _global_states()

    def seeds_numpy(values):
        np.random.seed(0)
        return float(values.sum())
    with pytest.raises(CheckFailed) as failure:
        Checker(_toy_spec(), seeds_numpy).run()
    assert failure.value.hint == GLOBAL_RANDOM_HINT and "NumPy's np.random" in failure.value.message
    assert _same_states(before, _global_states())


def test_a_reference_that_draws_from_a_global_generator_lets_the_answer_draw_too():
    def draws(values):
        torch.rand(1)
        return float(values.sum())
    Checker(Spec("99.draws", draws, _toy_spec().cases, hint="."), draws).run()


def test_the_side_effect_contract_is_declared_somewhere_for_each_hint():
    """Each side-effect hint is a declared mistake of some check, so test_each_mistake_fails_with_its_own_hint proves
    the contract catches it."""
    declared = {m.hint for check_id in registered_checks() for m in spec_of(check_id).mistakes}
    assert {GLOBAL_RANDOM_HINT, REQUIRES_GRAD_HINT, GRAD_HINT, MODE_HINT, DETACHED_HINT} <= declared


# --- every promise of a question has a case: the reference's every line is reached, its promised refusals raised ---

def reference_home(check_id):
    """The utils function (or class) that defines the concept: the reference, or the one of the same name where the
    check's reference is an adapter in utils.checks."""
    reference = spec_of(check_id).reference
    if getattr(reference, "__module__", "").startswith("utils.") and not reference.__module__.startswith("utils.checks"):
        return inspect.unwrap(reference)
    name = check_id.split(".", 1)[1]
    for info in pkgutil.iter_modules(utils.__path__):
        module = importlib.import_module(f"utils.{info.name}")
        if info.name not in ("checks", "labs") and hasattr(module, name):
            return inspect.unwrap(getattr(module, name))
    raise AssertionError(f"no utils home for {check_id}")


def question_text(check_id) -> str:
    """The markdown of the question above the check's call in its solution notebook (from its '## Q' heading)."""
    path, _ = SOLUTION_CALLS[check_id]
    cells, text = nbformat.read(path, as_version=4).cells, []
    for cell in cells:
        if cell.cell_type == "markdown":
            text = [cell.source] if cell.source.lstrip().startswith("## ") else text + [cell.source]
        elif re.search(rf"check\(\s*[\"']{re.escape(check_id)}[\"']", cell.source):
            return "\n".join(text)
    raise AssertionError(f"no question found for {check_id}")


def statements(home) -> tuple[str, dict[int, str], set[int]]:
    """The file, {line: source text} of every statement of ``home`` (docstrings left out), and the lines of its
    ``raise ValueError``."""
    source, first = inspect.getsourcelines(home)
    tree, lines, raises = ast.parse(textwrap.dedent("".join(source))), {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not (
                isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            lines[node.lineno + first - 1] = source[node.lineno - 1].strip()
        if isinstance(node, ast.Raise) and node.exc is not None and ast.unparse(node.exc).startswith("ValueError"):
            raises.add(node.lineno + first - 1)
    return inspect.getsourcefile(home), lines, raises


def executed_lines(filename: str, run) -> set[int]:
    """The lines of ``filename`` that ``run()`` executes (a line tracer on that file's frames only)."""
    lines: set[int] = set()

    def local(frame, event, arg):
        if event == "line":
            lines.add(frame.f_lineno)
        return local

    previous = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename == filename else None)
    try:
        run()
    except Exception:  # a promised refusal: the lines up to the raise count
        pass
    finally:
        sys.settrace(previous)
    return lines


# Lines of a reference that no case reaches, and why no question asks for them: keyed by the line's text.
NOT_ASKED = {
    "01.precision_recall_f1": ("the lab asks for macro averages only; binary and micro averaging are the reference's "
                               "extras", ("if len(labels) > 2:", "if len(labels) == 2 and pos_label not in",
                                          "keep = labels == pos_label", "tp, predicted, actual = (np.array(",
                                          "tp, predicted, actual = tp.sum(")),
    "02.cross_split_duplicates": ("the lab passes NumPy arrays; DataFrame inputs are the reference's extra",
                                  ("if not (isinstance(X_train, pd.DataFrame)", "raise TypeError(",
                                   "if set(X_train.columns) != set(X_test.columns):", "columns = list(X_train.columns)",
                                   "train_hash = pd.util.hash_pandas_object(", "test_hash = pd.util.hash_pandas_object(",
                                   "return np.isin(test_hash, train_hash)")),
    "04.causal_attention": ("the question has no bias argument (lesson 18 adds ALiBi's)", ("scores = scores + bias",)),
    "07.LoRALinear": ("the question wraps an nn.Linear; wrapping anything else is not asked", ("raise TypeError(",)),
    "09.integrated_gradients": ("the question always names the target", (
        "with torch.no_grad():", "target = int(model(x[None]).argmax(dim=1))")),
    "15.cache_key": ("the question's payloads are JSON data", ("raise TypeError(",)),
    "17.dataset_fingerprint": ("the question's columns hold numbers, strings and missing values, not other objects",
                               ("text = values.map(lambda v: json.dumps([type(v).__name__, v if isinstance(v, (str, "
                                "int, bool))",)),
    "17.two_proportion_ztest": ("the question passes four numbers; arrays are the reference's extra", ("return z, p",)),
}
# ValueErrors of a question that promises some ValueErrors but not these.
REFUSALS_NOT_ASKED = {
    "05.zero_memory_per_rank": ("the question promises a ValueError for the stage only", (
        "raise ValueError(f\"world_size must be", "raise ValueError(f\"parameters must be")),
}


@pytest.mark.parametrize("check_id", [c for c in registered_checks() if c not in BUILT_ELSEWHERE])
def test_every_line_of_the_reference_is_reached_by_a_case(check_id):
    """Each statement of the reference runs on some case, so every edge it handles (a rate of 0 or 1, an empty
    group, a clamp after the last step, a refusal) is an edge the check tests. Exempt: a raise ValueError the
    question does not promise (it never says 'ValueError'), and the documented extras above."""
    import contextlib
    spec = spec_of(check_id)
    filename, lines, raises = statements(reference_home(check_id))
    promised = "ValueError" in question_text(check_id)
    exempt = NOT_ASKED.get(check_id, ("", ()))[1] + REFUSALS_NOT_ASKED.get(check_id, ("", ()))[1]
    needed = {line for line, text in lines.items()
              if not (line in raises and not promised) and not any(text.startswith(e) for e in exempt)}
    reached: set[int] = set()
    with (spec.fixture() if spec.fixture else contextlib.nullcontext()) as folder:
        cases = sorted(spec.cases(folder) if spec.fixture else spec.cases(), key=lambda c: c.size)
        smallest = next(c for c in cases if c.raises is None)
        before, args = _global_states(), tuple(snapshot(smallest.args))
        reached |= executed_lines(filename, lambda: spec.invoke(spec.reference, args))
        touches = not _same_states(before, _global_states())
        for case in cases:
            if needed <= reached:  # stop tracing as soon as every needed line ran (the tests stay fast)
                break
            args = tuple(snapshot(case.args))  # the tracer runs only inside the reference's call
            reached |= executed_lines(filename, lambda: spec.invoke(spec.reference, args))
    unreached = [lines[line] for line in sorted(needed - reached)]
    assert not unreached, f"{check_id}: no case reaches these lines of {filename}: {unreached}"
    # Where the reference itself draws from a global generator, the learner may too (the contract is relaxed there):
    # the list stays short and deliberate.
    assert touches == (check_id in REFERENCES_USING_GLOBAL_RANDOMNESS), f"{check_id} draws from a global generator"


@pytest.mark.parametrize("check_id", [c for c in registered_checks() if any(
    case.raises for case in (spec_of(c).cases() if not spec_of(c).fixture else []))])
def test_every_promised_refusal_is_the_references(check_id):
    """A case that expects an exception is one the reference raises (so the case states the question's promise)."""
    spec = spec_of(check_id)
    for case in spec.cases():
        if case.raises:
            with pytest.raises(case.raises):
                spec.invoke(spec.reference, tuple(snapshot(case.args)))


def test_a_promised_refusal_must_be_raised_and_names_its_hint():
    def total(values):
        if len(values) == 0:
            raise ValueError("nothing to add")
        return float(values.sum())
    refusal = Case((np.array([]),), "no values", raises=ValueError, hint="Raise ValueError for an empty array.")
    spec = Spec("99.refuses", total, lambda: _toy_spec().cases() + [refusal], hint="Add them all up.")
    Checker(spec, total).run()
    with pytest.raises(CheckFailed) as failure:
        Checker(spec, lambda v: float(v.sum())).run()
    assert failure.value.hint == "Raise ValueError for an empty array." and "should raise ValueError" in str(failure.value)
