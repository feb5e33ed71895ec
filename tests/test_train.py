"""The training loop: it learns, records history, stops on a callback, and validates its input."""

import numpy as np
import pytest
import torch
from torch import nn

from utils.data import load_digits_split
from utils.repro import seed_everything
from utils.train import EarlyStopping, evaluate, fit, predict_proba


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


def small_model():
    seed_everything(0)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def test_fit_learns_and_records_history(digits):
    model = small_model()
    history = fit(model, digits.X_train, digits.y_train, digits.X_val, digits.y_val, epochs=8, lr=3e-3, progress=False)
    assert history.epochs == len(history.val_acc) == 8
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.val_acc[-1] > 0.85
    assert evaluate(model, digits.X_val, digits.y_val)[1] == pytest.approx(history.val_acc[-1])


def test_same_seed_same_history(digits):
    runs = [fit(small_model(), digits.X_train, digits.y_train, epochs=2, progress=False).train_loss for _ in range(2)]
    assert runs[0] == runs[1]


def test_callback_can_stop_training_and_sees_the_end(digits):
    class StopAfterTwo:
        ended = False

        def on_epoch_end(self, epoch, history, model):
            return epoch == 1

        def on_train_end(self, history, model):
            self.ended = True

    callback = StopAfterTwo()
    history = fit(small_model(), digits.X_train, digits.y_train, epochs=10, callbacks=[callback], progress=False)
    assert history.epochs == 2 and callback.ended


def test_predict_proba_rows_sum_to_one_and_dropout_is_off(digits):
    seed_everything(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Dropout(0.5), nn.Linear(32, 10))
    model.train()
    first, second = predict_proba(model, digits.X_test), predict_proba(model, digits.X_test)
    np.testing.assert_allclose(first.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_array_equal(first, second)  # eval mode: no dropout noise
    assert model.training, "the model's mode is restored"


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), "epochs"), (dict(batch_size=-1), "batch_size"), (dict(lr=0), "lr"),
])
def test_bad_arguments_are_rejected(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(small_model(), digits.X_train, digits.y_train, progress=False, **kwargs)


def test_mismatched_rows_are_rejected(digits):
    with pytest.raises(ValueError, match="rows"):
        fit(small_model(), digits.X_train, digits.y_train[:-1], progress=False)


def test_runs_on_the_chosen_device(digits):
    model = small_model()
    fit(model, digits.X_train[:64], digits.y_train[:64], epochs=1, device=torch.device("cpu"), progress=False)
    assert next(model.parameters()).device.type == "cpu"


def test_early_stopping_restores_the_best_weights(digits):
    model = small_model()
    stopper = EarlyStopping(patience=3)
    history = fit(model, digits.X_train[:200], digits.y_train[:200], digits.X_val, digits.y_val, epochs=200,
                  lr=1e-2, callbacks=[stopper], progress=False)
    assert history.epochs == stopper.best_epoch + 1 + 3 < 200
    assert evaluate(model, digits.X_val, digits.y_val)[0] == pytest.approx(min(history.val_loss))


def test_early_stopping_without_restore_keeps_the_last_weights(digits):
    model = small_model()
    stopper = EarlyStopping(patience=3, restore_best=False)
    history = fit(model, digits.X_train[:200], digits.y_train[:200], digits.X_val, digits.y_val, epochs=200,
                  lr=1e-2, callbacks=[stopper], progress=False)
    assert evaluate(model, digits.X_val, digits.y_val)[0] == pytest.approx(history.val_loss[-1])


def test_early_stopping_needs_validation_data_and_sane_arguments(digits):
    with pytest.raises(ValueError, match="validation data"):
        fit(small_model(), digits.X_train, digits.y_train, epochs=2, callbacks=[EarlyStopping()], progress=False)
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)


def test_augment_is_applied_to_training_batches_only(digits):
    seen = []

    def spy(batch, generator):
        seen.append(len(batch))
        return batch

    fit(small_model(), digits.X_train[:100], digits.y_train[:100], digits.X_val, digits.y_val, epochs=1,
        batch_size=50, augment=spy, progress=False)
    assert seen == [50, 50]
