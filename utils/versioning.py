"""What identifies a model version, a registry that promotes and rolls back by moving aliases, a canary with an
automatic rollback rule, and a behavioural test a model must pass before it ships.

    dataset_fingerprint(frame)                   # SHA-256 hex, the same for any row or column order
    registry = ModelRegistry("build/registry")   # content-addressed versions, aliases with their history
    version = registry.register("adult-income", artifact_dir, metadata)
    registry.set_alias("adult-income", "champion", version); registry.roll_back("adult-income", "champion")
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from utils.abtest import two_proportion_ztest
from utils.serving import ArtifactError, sha256_of

MISSING = "\x00<missing>"   # how a missing value is written in the fingerprint: no real value looks like it


def dataset_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 (hex) of a table's content: the same for any order of rows or columns, changed by any value.

    Columns are sorted by name and each row is written as one line (floats by ``repr``, strings escaped, other
    objects as JSON with their type, missing values as a marker); the lines are sorted, so a shuffle does not
    matter but a duplicated or dropped row does. The index is not content and is ignored; column names and
    dtypes are part of the hash.

    >>> a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    >>> dataset_fingerprint(a) == dataset_fingerprint(a.iloc[::-1][["y", "x"]])
    True
    >>> dataset_fingerprint(a) == dataset_fingerprint(a.assign(x=[1, 3]))
    False
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"dataset_fingerprint takes a pandas DataFrame, got {type(frame).__name__}; "
                         "wrap arrays with pd.DataFrame(array, columns=names)")
    if frame.columns.duplicated().any():
        raise ValueError(f"duplicated column names {sorted(set(frame.columns[frame.columns.duplicated()]))}: "
                         "rename them so each column can be found by name")
    columns = sorted(frame.columns, key=str)
    header = json.dumps([[str(c), str(frame[c].dtype)] for c in columns])
    texts = []
    for column in columns:
        values = frame[column].reset_index(drop=True)
        if pd.api.types.is_float_dtype(values):
            text = values.map(repr)                      # repr: the shortest text that reads back the same float
        elif pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
            text = values.astype(str)
        elif values.dropna().map(type).eq(str).all():    # strings: escaped so no value holds a separator
            text = "s" + (values.str.replace("\\", "\\\\", regex=False).str.replace("\x1f", "\\x1f", regex=False)
                          .str.replace("\n", "\\n", regex=False))
        else:                                            # anything else: JSON with the value's type
            text = values.map(lambda v: json.dumps([type(v).__name__, v if isinstance(v, (str, int, bool))
                                                    else repr(v)]))
        texts.append(text.where(values.notna(), MISSING).astype(str))
    lines = sorted(texts[0].str.cat(texts[1:], sep="\x1f")) if texts else []
    digest = hashlib.sha256(header.encode())
    for line in lines:
        digest.update(b"\n" + line.encode())
    return digest.hexdigest()


def git_commit(directory: Path | str = ".") -> str | None:
    """The commit checked out in ``directory`` (with "+dirty" when tracked files changed), or None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=directory,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment(packages=("numpy", "pandas", "scikit-learn", "torch")) -> dict:
    """The parts of the environment that change a trained model's numbers: Python, platform, packages, threads."""
    import torch
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": platform.python_version(), "machine": platform.machine(), "packages": versions,
            "torch_threads": torch.get_num_threads()}


def version_id(record: dict) -> str:
    """SHA-256 of a version record written as canonical JSON (sorted keys): equal records, equal ids."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


# --- a registry: versions stored by content, aliases moved with their history ---


def previous_champion(history: list[int]) -> int:
    """The version an alias pointed to before its current one: the last entry of ``history`` that differs from
    the latest (repeats of the current version are skipped).

    ``history`` lists the versions the alias was set to, oldest first. Versions registered but never promoted
    (rejected in testing) never appear in it, which is why "the latest version minus one" is wrong:

    >>> previous_champion([1, 2, 4])
    2
    """
    if len(history) == 0:
        raise ValueError("the alias has no history: it was never set, so there is nothing to roll back to")
    current = history[-1]
    for version in reversed(history):
        if version != current:
            return version
    raise ValueError(f"the alias only ever pointed to version {current}: there is nothing to roll back to")


class ModelRegistry:
    """A model registry in a folder: versions stored by content, aliases with an append-only history.

    ``root/<name>/versions/<n>/`` holds the artifact's files and ``version.json`` (the SHA-256 of every file and
    the metadata); registering the same content again returns the existing version. ``root/<name>/aliases.jsonl``
    records every alias move, so promotions and rollbacks can be audited and undone.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _model(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"model names are plain words like 'adult-income', got {name!r}")
        return self.root / name

    def versions(self, name: str) -> list[int]:
        folder = self._model(name) / "versions"
        return sorted(int(p.name) for p in folder.iterdir()) if folder.is_dir() else []

    def record(self, name: str, version: int) -> dict:
        path = self._model(name) / "versions" / str(version) / "version.json"
        if not path.is_file():
            raise ValueError(f"model {name!r} has no version {version}; versions: {self.versions(name)}")
        return json.loads(path.read_text())

    def register(self, name: str, artifact_dir: Path | str, metadata: dict) -> int:
        """Store a copy of ``artifact_dir`` as a new version (or return the version with the same content)."""
        artifact_dir = Path(artifact_dir)
        files = sorted(p for p in artifact_dir.rglob("*") if p.is_file())
        if not files:
            raise ValueError(f"{artifact_dir} holds no files: save the model there first")
        hashes = {str(p.relative_to(artifact_dir)): sha256_of(p) for p in files}
        content = version_id({"files": hashes, "metadata": metadata})
        for version in self.versions(name):
            if self.record(name, version)["content"] == content:
                return version
        version = max(self.versions(name), default=0) + 1
        target = self._model(name) / "versions" / str(version)
        shutil.copytree(artifact_dir, target)
        (target / "version.json").write_text(json.dumps(
            {"version": version, "content": content, "files": hashes, "metadata": metadata}, indent=1, default=str))
        return version

    def path(self, name: str, version: int) -> Path:
        """The folder of a version, after checking every file against the hash recorded at registration."""
        record = self.record(name, version)
        folder = self._model(name) / "versions" / str(version)
        for relative, expected in record["files"].items():
            if not (folder / relative).is_file() or sha256_of(folder / relative) != expected:
                raise ArtifactError(f"{name} version {version}: {relative} is missing or does not match the hash "
                                    "recorded when it was registered; do not serve it")
        return folder

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.record(name, version)   # the version must exist
        with open(self._model(name) / "aliases.jsonl", "a") as log:
            log.write(json.dumps({"alias": alias, "version": version}) + "\n")

    def history(self, name: str, alias: str) -> list[int]:
        log = self._model(name) / "aliases.jsonl"
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
        return [e["version"] for e in events if e["alias"] == alias]

    def alias(self, name: str, alias: str) -> int:
        history = self.history(name, alias)
        if not history:
            raise ValueError(f"model {name!r} has no alias {alias!r}")
        return history[-1]

    def roll_back(self, name: str, alias: str) -> int:
        """Point ``alias`` back at the version it pointed to before; returns that version."""
        version = previous_champion(self.history(name, alias))
        self.set_alias(name, alias, version)
        return version


# --- rollout ---


def should_roll_back(wrong_champion: int, n_champion: int, wrong_candidate: int, n_candidate: int,
                     alpha: float) -> bool:
    """True when the candidate's error rate is higher than the champion's, one-sided at level ``alpha``."""
    if n_champion == 0 or n_candidate == 0:
        return False
    z, _ = two_proportion_ztest(wrong_champion, n_champion, wrong_candidate, n_candidate)
    return bool(z > stats.norm.ppf(1 - alpha))


def canary(champion_wrong, candidate_wrong, *, share: float, looks: int, alpha: float, seed: int = 0) -> dict:
    """Send a share of a request stream to a candidate; after each of ``looks`` equal blocks, roll back if it errs
    more than the champion (one-sided test at ``alpha / looks`` per look, so the chance of a false rollback over
    all looks is at most ``alpha``, by the union bound).

    ``champion_wrong[i]`` and ``candidate_wrong[i]`` say whether each model would be wrong on request i; request i
    is answered by the candidate with probability ``share``. Returns whether and when it rolled back, and how many
    requests each model answered.
    """
    champion_wrong, candidate_wrong = np.asarray(champion_wrong, bool), np.asarray(candidate_wrong, bool)
    if champion_wrong.shape != candidate_wrong.shape or champion_wrong.ndim != 1:
        raise ValueError("champion_wrong and candidate_wrong must be 1-D and of the same length (one per request)")
    if not 0 < share < 1 or looks < 1 or not 0 < alpha < 1:
        raise ValueError(f"need 0 < share < 1, looks >= 1 and 0 < alpha < 1, got {share}, {looks}, {alpha}")
    to_candidate = np.random.default_rng(seed).random(len(champion_wrong)) < share
    ends = np.linspace(0, len(champion_wrong), looks + 1).astype(int)[1:]
    for look, end in enumerate(ends, start=1):
        routed = to_candidate[:end]
        counts = (int(champion_wrong[:end][~routed].sum()), int((~routed).sum()),
                  int(candidate_wrong[:end][routed].sum()), int(routed.sum()))
        if should_roll_back(*counts, alpha / looks):
            return {"rolled_back": True, "look": look, "requests": int(end), "candidate_requests": counts[3],
                    "champion_error": counts[0] / max(counts[1], 1), "candidate_error": counts[2] / max(counts[3], 1)}
    return {"rolled_back": False, "look": None, "requests": int(ends[-1]), "candidate_requests": counts[3],
            "champion_error": counts[0] / max(counts[1], 1), "candidate_error": counts[2] / max(counts[3], 1)}


# --- the model the lesson versions ---

ADULT_NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
ADULT_CATEGORICAL = ["workclass", "education", "marital-status", "occupation", "relationship", "race", "sex",
                     "native-country"]


def adult_income_model(monotone=(), random_state: int = 0):
    """Gradient boosting on ``load_adult()``'s raw columns: categories as ordinals (unseen ones read as missing),
    and a monotonic increase enforced for the numeric columns named in ``monotone``. Rebuilt from a version's
    record by the release tests, so it lives here rather than in one notebook.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    unknown = sorted(set(monotone) - set(ADULT_NUMERIC))
    if unknown:
        raise ValueError(f"monotonic constraints need numeric columns; {unknown} are not among {ADULT_NUMERIC}")
    encode = ColumnTransformer(
        [("numeric", "passthrough", ADULT_NUMERIC),
         ("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                        encoded_missing_value=np.nan), ADULT_CATEGORICAL)],
        verbose_feature_names_out=False)
    constraints = [1 if c in monotone else 0 for c in ADULT_NUMERIC] + [0] * len(ADULT_CATEGORICAL)
    categorical = list(range(len(ADULT_NUMERIC), len(ADULT_NUMERIC) + len(ADULT_CATEGORICAL)))
    return make_pipeline(encode, HistGradientBoostingClassifier(categorical_features=categorical,
                                                                monotonic_cst=constraints, random_state=random_state))


# --- behavioural tests ---


def directional_failure_rate(model, X: pd.DataFrame, column: str, delta: float, direction: int = 1) -> float:
    """Share of rows whose predicted probability of the positive class moves against ``direction`` (+1: should not
    fall, −1: should not rise) when ``delta`` is added to ``column``. Compares probabilities, not labels: a
    label hides every decrease that does not cross the threshold. ``X`` is not changed.
    """
    if direction not in (1, -1):
        raise ValueError(f"direction is +1 (the probability should not fall) or -1 (should not rise), got {direction}")
    if column not in X.columns:
        raise ValueError(f"no column {column!r} in X; columns: {list(X.columns)}")
    if len(X) == 0:
        raise ValueError("X has no rows")
    before = model.predict_proba(X)[:, 1]
    after = model.predict_proba(X.assign(**{column: X[column] + delta}))[:, 1]
    return float(np.mean(direction * (after - before) < 0))
