"""Every plot draws on the given axes with labelled axes."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from utils import plots  # noqa: E402
from utils.train import History  # noqa: E402

rng = np.random.default_rng(0)
Y = rng.integers(0, 2, 200)
P = np.clip(Y * 0.3 + rng.random(200) * 0.7, 0, 1)


@pytest.mark.parametrize("draw", [
    lambda ax: plots.plot_learning_curves(History([1.0, 0.5], [0.5, 0.8], [1.1, 0.7], [0.4, 0.7]), ax=ax),
    lambda ax: plots.plot_confusion_matrix([[5, 1], [2, 7]], ["no", "yes"], ax=ax, normalize=True),
    lambda ax: plots.plot_roc(Y, {"model": P}, ax=ax),
    lambda ax: plots.plot_precision_recall(Y, {"model": P}, ax=ax),
    lambda ax: plots.plot_reliability(Y, {"model": P}, ax=ax),
])
def test_plot_labels_its_axes(draw):
    plots.use_course_style()
    fig, ax = plt.subplots()
    assert draw(ax) is ax
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    plt.close(fig)


def test_learning_curves_reject_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        plots.plot_learning_curves(History(), metric="f1")
