"""The lab check framework: ``check("01.roc_auc", roc_auc)`` passes quietly or fails readably.

A check is declared once, as a :class:`Spec`: the ``utils`` reference, the cases (hand-written ones
plus generated ones), the return contract (by default: whatever the reference returns), the seed
argument if any, and the plausible :class:`Mistake` s, each a wrong answer paired with its hint.
Running it on a learner's answer, case by case from the smallest:

1. the answer is called on fresh arguments; any exception becomes a short verdict;
2. an argument it changed in place fails ("your function changed its input ... in place");
3. the result must keep the reference's contract: type, shape, dtype, device, ``requires_grad``;
4. the result must equal the reference's within the case's tolerance; when it does not, the
   mistakes are run on the same case and the one that gives the learner's result lends its hint;
5. an answer that takes a seed is called twice with the same seed (equal results) and once with
   another (different results, where the function is random).

A wrong answer raises ``CheckFailed``: one short message (the case, what was expected, what came
back, one hint), shown by Jupyter without a traceback, so "Run All" stops at the first wrong answer.
The tests submit every listed mistake and assert that exactly its own hint fires.
"""

from __future__ import annotations

import copy
import numbers
import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

NOT_ANSWERED_HINT = "Replace `# YOUR CODE HERE` and `raise NotImplementedError` with your answer, then rerun the cell."
CRASH_HINT = "Run it by hand on the example call above the check to see where it breaks."
SAME_SEED_HINT = ("Draw every random number from the generator or seed you are given (not from np.random or "
                  "torch's global generator), so the same seed gives the same result.")
OTHER_SEED_HINT = "Use the seed argument you are given: a different seed must give a different random result."


GLOBAL_RANDOM_HINT = ("Leave the caller's global random state alone: draw from a private generator "
                      "(np.random.default_rng(seed), torch.Generator().manual_seed(seed), random.Random(seed)); never "
                      "seed or draw from random, np.random or torch's global generator.")
REQUIRES_GRAD_HINT = ("Do not switch requires_grad on (or off) for the caller's tensor: work on a copy, "
                      "x = x.detach().clone().requires_grad_(True).")
GRAD_HINT = ("Leave the caller's .grad alone: take the gradient with torch.autograd.grad(loss, inputs), which fills "
             "no .grad, instead of loss.backward() (or zero_grad(), which wipes the caller's gradients).")
MODE_HINT = ("Remember model.training before calling model.eval() (or .train()) and restore it with "
             "model.train(was_training) before returning: the caller's model must come back in the mode it arrived in.")
DETACHED_HINT = ("Return a detached tensor (.detach()): the question asks for a result that carries no graph, so it "
                 "holds no memory of the computation and cannot leak gradients into the caller's model.")


def mutation_hint(name: str) -> str:
    """The hint for an answer that changed its input ``name`` in place."""
    return (f"Your function changed its input `{name}` in place. Work on a copy (np.copy, .clone(), .copy()) "
            f"and leave the caller's data as it was.")


class CheckFailed(AssertionError):
    """A lab answer is wrong; the message says what was expected, what came back, and a hint."""

    def __init__(self, check_id: str, message: str, hint: str | None = None):
        self.check_id, self.message, self.hint = check_id, message, hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"check {self.check_id} failed: {self.message}"
        return f"{text}\nHint: {self.hint}" if self.hint else text

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines instead of a traceback."""
        return [f"\x1b[31m✗ {line}\x1b[0m" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


class _Reject(Exception):
    """Raised by a spec's ``invoke`` or ``measure`` when a result cannot be used: a message and a hint."""

    def __init__(self, message: str, hint: str):
        super().__init__(message)
        self.message, self.hint = message, hint


def reject(message: str, hint: str):
    """From a spec's ``invoke`` or ``measure``: the learner's result is unusable (becomes the verdict)."""
    raise _Reject(message, hint)


@dataclass(frozen=True)
class Mistake:
    """A plausible wrong answer (same signature as the right one) and the hint its author needs.

    Written once: the check runs ``answer`` on a failing case to recognise the mistake, and the tests
    submit ``answer`` and assert that this hint, and no other, is shown.
    """
    answer: Callable
    hint: str

    @property
    def name(self) -> str:
        return getattr(self.answer, "__name__", repr(self.answer))


@dataclass
class Case:
    """One call: its arguments, how messages name it, and its tolerance (stated where the case is written)."""
    args: tuple
    label: str
    atol: float = 1e-9
    size: int | None = None  # cases run smallest first, so a failure shows the smallest failing case
    raises: type[Exception] | None = None  # the question promises this exception for these arguments
    hint: str | None = None  # this case's own hint (a promised edge), shown when the answer fails it

    def __post_init__(self):
        if self.size is None:
            self.size = sum(_size(a) for a in self.args)


def _size(value) -> int:
    if hasattr(value, "shape") and hasattr(value, "__len__"):
        return int(np.prod(value.shape)) if len(value.shape) else 1
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value)
    return 1


@contextlib.contextmanager
def global_seed(seed: int):
    """Seed Python's, NumPy's and torch's global generators for a case generator that needs them (``nn.Linear``
    draws its initial weights from torch's), and give the caller's states back afterwards: a check's inputs never
    depend on, and never change, the caller's global random state."""
    import random
    import torch
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])


def _call(function, args):
    return function(*args)


def _identity(output, args):
    return output


def with_model_mode(output, args):
    """A measure for answers that take a model first: the result, and whether the model is in training mode after
    the call (an answer that calls model.eval() must put the mode back)."""
    values = output.detach().cpu().numpy() if _is_tensor(output) else output
    return values, bool(args[0].training)


@dataclass
class Spec:
    """Everything a check needs, declared in one place (see the module docstring)."""
    check_id: str
    reference: Callable
    cases: Callable[[], list[Case]]
    hint: str
    mistakes: Sequence[Mistake] = ()
    invoke: Callable[[Callable, tuple], Any] = _call     # how a case runs a function (or a class)
    measure: Callable[[Any, tuple], Any] = _identity     # what is compared: the result, or a property of it
    contract: Callable[[Any, Any], tuple[str, str] | None] | None = None  # None: like the reference's result
    seed: tuple[int, Callable[[int], Any]] | None = None  # (argument position, seed number -> seed object)
    random: bool = True                                  # must another seed change the result?
    fixture: Callable[[], Any] | None = None             # a context manager whose value ``cases`` receives
    detached: bool = False                               # the question asks for a detached result


_REGISTRY: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Add a check to the registry; ids are unique."""
    if spec.check_id in _REGISTRY:
        raise ValueError(f"check {spec.check_id!r} is registered twice")
    _REGISTRY[spec.check_id] = spec
    return spec


def registered_checks() -> list[str]:
    """Every check id, sorted."""
    return sorted(_REGISTRY)


def spec_of(check_id: str) -> Spec:
    """The declaration of a check (its cases, mistakes and seed), for tests and contributors."""
    if check_id not in _REGISTRY:
        raise ValueError(f"unknown check {check_id!r}; known checks: {', '.join(registered_checks())}")
    return _REGISTRY[check_id]


# --- rendering ---

def format_value(value) -> str:
    """A short, one-line rendering of numbers, tuples, dicts, arrays and tensors."""
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    if isinstance(value, np.integer):
        return str(int(value))
    if isinstance(value, dict):
        inner = ", ".join(f"{k!r}: {format_value(v)}" for k, v in list(value.items())[:8])
        return "{" + inner + (", ..." if len(value) > 8 else "") + "}"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(format_value(v) for v in value[:8]) + (", ..." if len(value) > 8 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    if isinstance(value, np.ndarray):
        text = np.array2string(value, precision=4, threshold=12, edgeitems=3, separator=", ", max_line_width=10**6)
        return " ".join(text.split())  # one line, even for 2-D arrays
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(value) -> str:
    """A value's kind in words: 'a float', 'a ndarray of shape (3,) and dtype float64', ..."""
    if _is_tensor(value):
        grad = ", requires_grad" if value.requires_grad else ""
        return f"a tensor of shape {tuple(value.shape)}, {value.dtype} on {value.device}{grad}"
    if isinstance(value, np.ndarray):
        return f"an ndarray of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (tuple, list, dict)):
        return f"a {type(value).__name__} of {len(value)}"
    return f"a {type(value).__name__}"


# --- comparing ---

def _is_tensor(value) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach") and hasattr(value, "dtype")


def _is_module(value) -> bool:
    import torch
    return isinstance(value, torch.nn.Module)


def _real_scalar(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


_KINDS = {"f": "floating-point", "i": "integer", "u": "integer", "b": "boolean"}


def like_reference(got, expected, where: str = "your result") -> tuple[str, str] | None:
    """The first way ``got`` breaks the contract that ``expected`` (the reference's result) keeps, as (message, hint)."""
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return f"{where} should be a bool, got {_describe(got)}.", "Return True or False."
        return None
    if isinstance(expected, (numbers.Integral, np.integer)):
        if not (isinstance(got, (numbers.Integral, np.integer)) and not isinstance(got, (bool, np.bool_))):
            return (f"{where} should be an int, got {_describe(got)} {format_value(got)}.",
                    "Return a plain integer, for example int(x).")
        return None
    if _real_scalar(expected):
        if not _real_scalar(got):
            return (f"{where} should be a single number (a float), got {_describe(got)}.",
                    "Return a plain number: float(x) (or .item() for a tensor), not an array or a tensor.")
        return None
    if isinstance(expected, str):
        return None if isinstance(got, str) else (f"{where} should be a str, got {_describe(got)}.", "Return a string.")
    if _is_tensor(expected):
        if not _is_tensor(got):
            return (f"{where} should be {_describe(expected)}, got {_describe(got)}.",
                    "Return a torch tensor (torch.as_tensor), not NumPy or a Python number.")
        if tuple(got.shape) != tuple(expected.shape):
            return (f"{where} should have shape {tuple(expected.shape)}, got {tuple(got.shape)}.",
                    "Check which dimensions you keep (keepdim=True?) and that you do not flatten or squeeze.")
        if got.dtype != expected.dtype:
            return (f"{where} should have dtype {expected.dtype}, got {got.dtype}.",
                    f"Keep the dtype the rest of the pipeline expects: .to({expected.dtype}).")
        if got.device != expected.device:
            return f"{where} should be on {expected.device}, got {got.device}.", "Create tensors on the input's device."
        if expected.requires_grad and not got.requires_grad:
            return (f"{where} should stay connected to the graph (requires_grad), but gradients cannot flow through it.",
                    "Keep it a torch tensor built from the inputs: .item(), .detach(), float() or NumPy cut it off.")
        return None
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return (f"{where} should be {_describe(expected)}, got {_describe(got)}.",
                    "Return a NumPy array: np.asarray(...).")
        if got.shape != expected.shape:
            return (f"{where} should have shape {expected.shape}, got {got.shape}.",
                    "One value per entry of the expected shape: check the axis you reduce over.")
        want, have = _KINDS.get(expected.dtype.kind, expected.dtype.kind), _KINDS.get(got.dtype.kind, got.dtype.kind)
        if want != have:
            return (f"{where} should hold {want} values, got dtype {got.dtype}.",
                    f"Convert with .astype({expected.dtype}) or compute in {want} numbers.")
        return None
    if isinstance(expected, (tuple, list)):
        if type(got) is not type(expected):
            kind = type(expected).__name__
            return (f"{where} should be a {kind} of {len(expected)}, got {_describe(got)}.",
                    f"Return a {kind}" + (" such as (a, b)." if kind == "tuple" else ", not a generator or an array."))
        if len(got) != len(expected):
            return (f"{where} should be a {type(expected).__name__} of {len(expected)}, got one of {len(got)}.",
                    "Return exactly one entry per item the question asks for.")
        for i, (g, e) in enumerate(zip(got, expected)):
            problem = like_reference(g, e, f"entry {i} of {where}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return (f"{where} should be a dict with keys {sorted(map(str, expected))}, got {_describe(got)}.",
                    "Return a dict {key: value}.")
        if set(map(str, got)) != set(map(str, expected)):
            return (f"{where} should have the keys {sorted(map(str, expected))}, got {sorted(map(str, got))}.",
                    "Use exactly the keys the question names, one per group or item.")
        by_name = {str(k): v for k, v in got.items()}
        for key, e in expected.items():
            problem = like_reference(by_name[str(key)], e, f"{where}[{str(key)!r}]")
            if problem:
                return problem
        return None
    if _is_module(expected):
        return None if _is_module(got) else (f"{where} should be a torch module, got {_describe(got)}.",
                                             "Return an nn.Module (for example nn.Sequential(...)).")
    if not isinstance(got, type(expected)):
        return f"{where} should be a {type(expected).__name__}, got {_describe(got)}.", "Return the type the question names."
    return None


def _numbers(value) -> np.ndarray:
    if _is_tensor(value):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float)


def close(got, expected, atol: float) -> bool:
    """Equal within ``atol``, recursively through tuples, lists and dicts (same structure required)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(map(str, got)) != set(map(str, expected)):
            return False
        by_name = {str(k): v for k, v in got.items()}
        return all(close(by_name[str(k)], v, atol) for k, v in expected.items())
    if isinstance(expected, (tuple, list)) and not isinstance(expected, str):
        return (isinstance(got, (tuple, list)) and len(got) == len(expected)
                and all(close(g, e, atol) for g, e in zip(got, expected)))
    if isinstance(expected, str):
        return got == expected
    try:
        g, e = _numbers(got), _numbers(expected)
    except (TypeError, ValueError):
        return False
    return g.shape == e.shape and bool(np.allclose(g, e, rtol=0, atol=atol, equal_nan=True))


def same(a, b) -> bool:
    """Exactly equal (values, dtypes, structure): used for inputs before and after a call, and for seeds."""
    import pandas as pd
    if _is_tensor(a):
        if not (_is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape):
            return False
        a, b = a.detach(), b.detach()
        if a.is_floating_point():
            return bool(((a == b) | (a.isnan() & b.isnan())).all())
        return bool((a == b).all())
    if _is_module(a):
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(same(sa[k], sb[k]) for k in sa)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (pd.DataFrame, pd.Series)):
        return type(a) is type(b) and a.equals(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, (numbers.Number, str, bytes, type(None), np.generic)):
        return type(a) is type(b) and (a == b or (a != a and b != b))
    return True  # functions, sessions, generators: not data a learner could have changed


def snapshot(args: tuple) -> list:
    """Deep copies of the arguments; one that cannot be copied (an ONNX Runtime session) is passed as it is."""
    copies = []
    for value in args:
        try:
            copies.append(copy.deepcopy(value))
        except Exception:  # an ONNX Runtime session, say: passed as it is and not compared
            copies.append(value)
            continue
        if _is_module(value):  # deepcopy drops a parameter's .grad: a model with stale gradients keeps them
            for original, duplicate in zip(value.parameters(), copies[-1].parameters()):
                if original.grad is not None:
                    duplicate.grad = original.grad.detach().clone()
    return copies


# --- side effects: the caller's random state, gradients and modes ---

_GENERATORS = ("Python's random", "NumPy's np.random", "torch's global generator")


def _global_random_states() -> tuple:
    import random
    import torch
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _changed_generators(before: tuple, after: tuple) -> set[str]:
    """The names of the global generators whose state differs between two ``_global_random_states()``."""
    changed = set()
    if before[0] != after[0]:
        changed.add(_GENERATORS[0])
    if before[1][0] != after[1][0] or any(not np.array_equal(a, b) for a, b in zip(before[1][1:], after[1][1:])):
        changed.add(_GENERATORS[1])
    if not bool((before[2] == after[2]).all()):
        changed.add(_GENERATORS[2])
    return changed


def _side_state(args: tuple) -> dict[tuple, Any]:
    """What a call must not change besides values: (argument, where, what) -> state, for every tensor argument
    (requires_grad, .grad) and module (training mode of each submodule, each parameter's requires_grad)."""
    state: dict[tuple, Any] = {}

    def grad_of(tensor):
        return None if tensor.grad is None else tensor.grad.detach().clone()

    def visit(value, position, where):
        if _is_tensor(value):
            state[(position, where, "requires_grad")] = value.requires_grad
            if value.is_leaf:
                state[(position, where, "grad")] = grad_of(value)
        elif _is_module(value):
            for name, module in value.named_modules():
                state[(position, f"{where}.{name}" if name else where, "mode")] = module.training
            for name, parameter in value.named_parameters():  # a parameter's .grad may be left, as backward() does
                state[(position, f"{where}.{name}", "requires_grad")] = parameter.requires_grad
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                visit(item, position, f"{where}[{i}]")
        elif isinstance(value, dict):
            for key, item in value.items():
                visit(item, position, f"{where}[{key!r}]")

    for position, value in enumerate(args):
        visit(value, position, "")
    return state


def _same_side(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return same(a, b) if _is_tensor(a) else a == b


def _side_changes(before: dict, after: dict) -> dict[tuple, tuple]:
    return {key: (before[key], after.get(key)) for key in before if not _same_side(before[key], after.get(key))}


def _has_graph(value) -> bool:
    if _is_tensor(value):
        return bool(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return any(_has_graph(v) for v in value)
    if isinstance(value, dict):
        return any(_has_graph(v) for v in value.values())
    return False


# --- running ---

class Checker:
    """Runs one spec on one candidate."""

    def __init__(self, spec: Spec, candidate: Callable):
        self.spec, self.candidate, self.cases = spec, candidate, 0

    def fail(self, message: str, hint: str | None = None):
        raise CheckFailed(self.spec.check_id, message, hint)

    def _learner(self, function: Callable, args: tuple, case: Case):
        """Invoke the learner's answer; its exceptions and unusable results become verdicts."""
        try:
            return self.spec.invoke(function, args)
        except CheckFailed:
            raise
        except _Reject as problem:
            self.fail(f"for {case.label}: {problem.message}", problem.hint)
        except NotImplementedError:
            self.fail("not answered yet: the code still raises NotImplementedError.", NOT_ANSWERED_HINT)
        except Exception as error:  # the learner's bug, reported briefly instead of a traceback
            self.fail(f"for {case.label} your code raised {type(error).__name__}: {_one_line(error)}",
                      case.hint or CRASH_HINT)  # a case that states a promise (a one-pass stream) names it

    def _measure(self, output, args, case: Case):
        try:
            return self.spec.measure(output, args)
        except CheckFailed:
            raise
        except _Reject as problem:
            self.fail(f"for {case.label}: {problem.message}", problem.hint)
        except Exception as error:
            self.fail(f"for {case.label} your result could not be used ({type(error).__name__}: {_one_line(error)}); "
                      f"it came back as {_describe(output)}.", "Return exactly what the question asks for.")

    def _mistake_value(self, mistake: Mistake, case: Case):
        try:
            args = tuple(snapshot(case.args))
            return self.spec.measure(self.spec.invoke(mistake.answer, args), args)
        except Exception:
            return _NO_VALUE

    def run_case(self, case: Case) -> tuple[Any, Any]:
        """Run one case: verdicts for crashes, changed inputs and broken contracts; returns (got, expected)."""
        spec = self.spec
        self.cases += 1
        reference_args = tuple(snapshot(case.args))
        side_before, random_before = _side_state(reference_args), _global_random_states()
        expected_output = spec.invoke(spec.reference, reference_args)
        reference_random = _changed_generators(random_before, _global_random_states())
        reference_side = _side_changes(side_before, _side_state(reference_args))
        expected = spec.measure(expected_output, reference_args)
        args, before = tuple(snapshot(case.args)), snapshot(case.args)
        random_before = _global_random_states()
        output = self._learner(self.candidate, args, case)
        random_after = _global_random_states()
        for position, (now, then) in enumerate(zip(args, before)):
            if not same(now, then):
                name = _parameter_name(self.candidate, position)
                self.fail(f"for {case.label} your function changed its input `{name}` in place.", mutation_hint(name))
        self._side_effects(case, args, before, reference_side, reference_random, random_before, random_after)
        if spec.detached and _has_graph(output):
            self.fail(f"for {case.label} your result still requires grad (it is attached to the graph).", DETACHED_HINT)
        problem = (spec.contract or like_reference)(output, expected_output)
        if problem:
            self.fail(f"for {case.label} {problem[0]}", problem[1])
        return self._measure(output, args, case), expected

    def _side_effects(self, case, args, before, reference_side, reference_random, random_before, random_after):
        """Fail when the learner's call changed what the reference's leaves alone: the caller's global random state,
        an input tensor's requires_grad or .grad, a module's mode (each with its own hint)."""
        changed = _changed_generators(random_before, random_after) - reference_random
        if changed:
            import random
            import torch
            random.setstate(random_before[0])  # give the caller its state back before failing
            np.random.set_state(random_before[1])
            torch.set_rng_state(random_before[2])
            self.fail(f"for {case.label} your function changed the caller's global random state "
                      f"({', '.join(sorted(changed))}).", GLOBAL_RANDOM_HINT)
        learner_side = _side_changes(_side_state(tuple(before)), _side_state(args))
        for (position, where, what), (then, now) in learner_side.items():
            if (position, where, what) in reference_side:
                continue
            name = _parameter_name(self.candidate, position) + where
            if what == "mode":
                modes = {True: "training", False: "eval"}
                self.fail(f"for {case.label} `{name}` arrived in {modes[then]} mode and your function left it in "
                          f"{modes[now]} mode.", MODE_HINT)
            if what == "requires_grad":
                self.fail(f"for {case.label} your function changed requires_grad of the caller's `{name}` from "
                          f"{then} to {now}.", REQUIRES_GRAD_HINT)
            self.fail(f"for {case.label} your function changed `{name}.grad` "
                      f"({'none' if then is None else 'stale'} before, {'none' if now is None else 'set'} after).",
                      GRAD_HINT)

    def diagnose(self, results: list[tuple[Case, Any, Any]], failing: tuple[Case, Any, Any],
                 case_hint: str | None = None) -> str:
        """The hint of the listed mistake that reproduces every result the learner gave (else the failing one's;
        else the failing case's own hint, where it states a promised edge; else the check's)."""
        case, got, _ = failing
        on_this_case = [m for m in self.spec.mistakes if close(self._mistake_value(m, case), got, case.atol)]
        for mistake in on_this_case:
            if all(close(self._mistake_value(mistake, c), g, c.atol) for c, g, _ in results):
                return mistake.hint
        return on_this_case[0].hint if on_this_case else case_hint or self.spec.hint

    def run_seeds(self) -> None:
        spec = self.spec
        position, make = spec.seed
        case = max((c for c in self._cases if c.raises is None), key=lambda c: c.size)  # the largest case: random results differ most visibly

        def with_seed(number):
            args = list(snapshot(case.args))
            args[position] = make(number)
            return self._learner(self.candidate, tuple(args), case)

        self.cases += 1
        first, again, other = with_seed(1234), with_seed(1234), with_seed(4321)
        name = _parameter_name(self.candidate, position)
        if not same(first, again):
            self.fail(f"for {case.label} called twice with the same `{name}`, your function gave different results.",
                      SAME_SEED_HINT)
        if spec.random and same(first, other):
            self.fail(f"for {case.label} called with two different `{name}` values, your function gave the same "
                      f"result.", OTHER_SEED_HINT)

    def run(self) -> None:
        """Every case, smallest first; then the seed test. A fixture (a temporary folder) is removed afterwards."""
        spec = self.spec
        with (spec.fixture() if spec.fixture else contextlib.nullcontext()) as resource:
            self._cases = spec.cases(resource) if spec.fixture else spec.cases()
            self._run()

    def run_raising_case(self, case: Case) -> None:
        """A promised refusal: the answer must raise ``case.raises`` (the reference does, which the tests assert)."""
        self.cases += 1
        kind = case.raises.__name__
        hint = case.hint or f"Raise {kind} for these arguments, as the question says."
        try:
            output = self.spec.invoke(self.candidate, tuple(snapshot(case.args)))
        except case.raises:
            return
        except NotImplementedError:
            self.fail("not answered yet: the code still raises NotImplementedError.", NOT_ANSWERED_HINT)
        except Exception as error:
            self.fail(f"for {case.label} your code raised {type(error).__name__}: {_one_line(error)}; the question asks "
                      f"for a {kind}.", hint)
        self.fail(f"for {case.label} your function returned {format_value(output)}; it should raise {kind}.", hint)

    def _run(self) -> None:
        results = []
        values = [case for case in self._cases if case.raises is None]
        for case in sorted(values, key=lambda c: c.size):
            got, expected = self.run_case(case)
            results.append((case, got, expected))
        failures = [r for r in results if not close(r[1], r[2], r[0].atol)]
        if failures:  # the smallest failing case, with the hint of the mistake that explains the answer
            case, got, expected = failures[0]
            self.fail(f"for {case.label}\n  expected {format_value(expected)}\n  got      {format_value(got)}",
                      self.diagnose(results, failures[0], case.hint))
        for case in sorted((c for c in self._cases if c.raises is not None), key=lambda c: c.size):
            self.run_raising_case(case)
        if self.spec.seed:
            self.run_seeds()


class _NoValue:
    pass


_NO_VALUE = _NoValue()


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _parameter_name(function: Callable, position: int) -> str:
    import inspect
    try:
        target = function.__init__ if isinstance(function, type) else function
        names = [p for p in inspect.signature(target).parameters if p != "self"]
        return names[position]
    except (TypeError, ValueError, IndexError):
        return f"argument {position + 1}"


def check(check_id: str, candidate: Callable) -> None:
    """Run the lab check ``check_id`` on ``candidate``: print a success line, or raise ``CheckFailed``.

    >>> check("01.roc_auc", lambda y, s: 0.5)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    utils.checks.core.CheckFailed: check 01.roc_auc failed: ...
    """
    spec = spec_of(check_id)
    if not callable(candidate):
        raise CheckFailed(check_id, f"expected a function, got a {type(candidate).__name__}.",
                          "Pass the function itself, without calling it: check(id, my_function).")
    checker = Checker(spec, candidate)
    checker.run()
    print(f"✓ {check_id} passed ({checker.cases} case{'' if checker.cases == 1 else 's'})")
