"""One consistent look for the course's figures. Every function draws on ``ax`` (or a new one) and returns it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from utils import metrics

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "legend.frameon": False,
}


def use_course_style() -> None:
    """Apply the course's matplotlib settings (call once per notebook)."""
    plt.rcParams.update(STYLE)


def _axes(ax):
    return ax if ax is not None else plt.subplots()[1]


def plot_learning_curves(history, ax=None, metric: str = "loss"):
    """Training and validation ``loss`` or ``acc`` per epoch from a ``utils.train.History``."""
    if metric not in {"loss", "acc"}:
        raise ValueError(f"metric must be 'loss' or 'acc', got {metric!r}")
    ax = _axes(ax)
    epochs = np.arange(1, history.epochs + 1)
    ax.plot(epochs, getattr(history, f"train_{metric}"), label="train")
    if getattr(history, f"val_{metric}"):
        ax.plot(epochs, getattr(history, f"val_{metric}"), label="validation")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss" if metric == "loss" else "accuracy",
           title=f"Learning curves ({metric})")
    ax.legend()
    return ax


def plot_confusion_matrix(matrix, labels=None, ax=None, normalize: bool = False):
    """Heat map of a confusion matrix, counts (or row-normalised rates) written in each cell."""
    matrix = np.asarray(matrix, dtype=float)
    values = matrix / matrix.sum(axis=1, keepdims=True).clip(min=1) if normalize else matrix
    labels = labels if labels is not None else list(range(len(matrix)))
    ax = _axes(ax)
    ax.imshow(values, cmap="Blues")
    ax.grid(False)
    for (i, j), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        ax.text(j, i, text, ha="center", va="center",
                color="white" if value > values.max() / 2 else "black")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="predicted label", ylabel="true label", title="Confusion matrix")
    return ax


def plot_roc(y_true, scores: dict, ax=None):
    """ROC curves of several scorers, ``scores`` mapping a name to its scores; AUC in the legend."""
    ax = _axes(ax)
    for name, score in scores.items():
        fpr, tpr, _ = metrics.roc_curve(y_true, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {metrics.roc_auc(y_true, score):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", title="ROC curve")
    ax.legend(loc="lower right")
    return ax


def plot_precision_recall(y_true, scores: dict, ax=None):
    """Precision-recall curves of several scorers; average precision in the legend, prevalence as baseline."""
    ax = _axes(ax)
    for name, score in scores.items():
        precision, recall, _ = metrics.precision_recall_curve(y_true, score)
        ax.step(recall, precision, where="post",
                label=f"{name} (AP {metrics.average_precision(y_true, score):.3f})")
    ax.axhline(np.mean(y_true), ls="--", color="grey", label="prevalence (chance)")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    ax.legend(loc="lower left")
    return ax


def plot_reliability(y_true, probabilities: dict, n_bins: int = 10, ax=None):
    """Reliability diagram: observed frequency against mean predicted probability per bin; ECE in the legend."""
    ax = _axes(ax)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfectly calibrated")
    for name, prob in probabilities.items():
        mean_prob, frequency, _ = metrics.calibration_bins(y_true, prob, n_bins)
        ece = metrics.expected_calibration_error(y_true, prob, n_bins)
        ax.plot(mean_prob, frequency, marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency of positives",
           title="Reliability diagram", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    return ax
