"""utils.versioning: fingerprints, the registry's alias history, the canary rule and the directional test."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from utils import versioning
from utils.serving import ArtifactError


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(17, 90, 50), "gain": rng.normal(0, 1, 50),
                         "job": rng.choice(["a", "b", None], 50), "flag": rng.random(50) < 0.5})


def test_fingerprint_ignores_order_and_index_but_sees_every_value(frame):
    base = versioning.dataset_fingerprint(frame)
    assert len(base) == 64 and int(base, 16) >= 0
    shuffled = frame.sample(frac=1, random_state=1)[["job", "flag", "gain", "age"]]
    assert versioning.dataset_fingerprint(shuffled) == base
    assert versioning.dataset_fingerprint(shuffled.reset_index(drop=True)) == base
    changed = [frame.assign(gain=frame.gain.where(frame.index != 3, frame.gain[3] + 1e-12)),
               frame.assign(job=frame.job.where(frame.index != 0, "c")),
               frame.assign(age=frame.age.astype(float)),            # same numbers, another dtype
               frame.rename(columns={"gain": "gain2"}),
               frame.iloc[1:], pd.concat([frame, frame.iloc[:1]]),   # a dropped and a duplicated row
               frame.assign(age=frame.age.values[np.r_[1, 0, 2:50]])]  # two values swapped between rows
    assert len({versioning.dataset_fingerprint(f) for f in changed} | {base}) == len(changed) + 1
    glued = [pd.DataFrame({"a": ["p\x1fsq"], "b": ["r"]}), pd.DataFrame({"a": ["p"], "b": ["q\x1fsr"]})]
    assert versioning.dataset_fingerprint(glued[0]) != versioning.dataset_fingerprint(glued[1])  # separators escaped
    missing = frame.assign(job=frame.job.where(frame.job.notna(), "\x00<missing>x"))
    assert versioning.dataset_fingerprint(missing) != base
    with pytest.raises(ValueError, match="DataFrame"):
        versioning.dataset_fingerprint(frame.values)


def test_previous_champion_skips_rejected_versions_and_repeats():
    assert versioning.previous_champion([1, 2, 4]) == 2
    assert versioning.previous_champion([1, 3, 3]) == 1
    assert versioning.previous_champion([1, 2, 1]) == 2          # rolling back a rollback rolls forward
    for history in ([], [5, 5]):
        with pytest.raises(ValueError, match="nothing to roll back"):
            versioning.previous_champion(history)


def test_registry_stores_by_content_moves_aliases_and_refuses_tampered_files(tmp_path):
    registry = versioning.ModelRegistry(tmp_path / "registry")
    versions = []
    for content in ("one", "two", "one", "three"):
        folder = tmp_path / f"artifact-{content}"
        folder.mkdir(exist_ok=True)
        (folder / "model.bin").write_text(content)
        versions.append(registry.register("m", folder, {"content": content}))
    assert versions == [1, 2, 1, 3] and registry.versions("m") == [1, 2, 3]
    for version in (1, 3):                 # version 2 was rejected: never promoted
        registry.set_alias("m", "champion", version)
    assert registry.alias("m", "champion") == 3 and registry.roll_back("m", "champion") == 1
    assert registry.history("m", "champion") == [1, 3, 1]
    assert (registry.path("m", 1) / "model.bin").read_text() == "one"
    (tmp_path / "registry" / "m" / "versions" / "3" / "model.bin").write_text("tampered")
    with pytest.raises(ArtifactError, match="does not match"):
        registry.path("m", 3)
    with pytest.raises(ValueError, match="no version 9"):
        registry.set_alias("m", "champion", 9)
    assert json.loads((tmp_path / "registry" / "m" / "versions" / "2" / "version.json").read_text())["version"] == 2


def test_canary_false_rollbacks_stay_below_alpha_and_a_worse_candidate_is_caught():
    rng = np.random.default_rng(0)
    false_alarms = [versioning.canary(rng.random(4000) < 0.15, rng.random(4000) < 0.15, share=0.2, looks=10,
                                      alpha=0.05, seed=s)["rolled_back"] for s in range(300)]
    assert np.mean(false_alarms) <= 0.05
    caught = [versioning.canary(rng.random(4000) < 0.15, rng.random(4000) < 0.25, share=0.2, looks=10, alpha=0.05,
                                seed=s)["rolled_back"] for s in range(50)]
    assert np.mean(caught) > 0.9


def test_directional_failure_rate_compares_probabilities_not_labels():
    X = pd.DataFrame({"x": np.linspace(-2, 2, 41), "z": np.zeros(41)})
    model = LogisticRegression().fit(X, (X.x < 0).astype(int))   # the probability falls as x grows
    before = X.copy()
    assert versioning.directional_failure_rate(model, X, "x", 0.1) == 1.0
    assert versioning.directional_failure_rate(model, X, "x", 0.1, direction=-1) == 0.0
    assert versioning.directional_failure_rate(model, X, "z", 5.0) == 0.0       # z was never used: no change
    pd.testing.assert_frame_equal(X, before)
    with pytest.raises(ValueError, match="no column"):
        versioning.directional_failure_rate(model, X, "gain", 1.0)
