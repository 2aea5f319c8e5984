"""StatNN, the field's bar for predicting accuracy from weights (Unterthiner et al. 2020).

Per layer, the mean, variance and the 0, 25, 50, 75 and 100 % quantiles of the weight matrix and of
the bias vector, concatenated over layers, go into gradient-boosted trees (scikit-learn's
`HistGradientBoostingRegressor`). The features do not change when hidden units are permuted, as an
MLP's function does not. It is not differentiable, so it cannot guide training; it is what every
ENN is measured against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def layer_statistics(weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> np.ndarray:
    """(M, 2 * 7 * layers) statistics of M MLPs: per layer, of its weights then of its biases."""
    columns = []
    for w, b in zip(weights, biases):
        for values in (w.reshape(len(w), -1), b.reshape(len(b), -1)):
            columns += [values.mean(1), values.var(1), *np.quantile(values, QUANTILES, axis=1)]
    return np.nan_to_num(np.stack(columns, axis=1).astype(np.float64), nan=0.0, posinf=1e6, neginf=-1e6)


class StatNN:
    """Gradient-boosted trees on per-layer weight statistics, predicting accuracy.

    :param seed: the trees' random state.
    """

    def __init__(self, seed: int = 0):
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.model = HistGradientBoostingRegressor(max_iter=500, learning_rate=0.05, early_stopping=True,
                                                   validation_fraction=0.1, random_state=seed)

    def fit(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray], accuracy: np.ndarray) -> StatNN:
        self.model.fit(layer_statistics(weights, biases), accuracy)
        return self

    def estimated_accuracy(self, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray]) -> np.ndarray:
        """(M,) the trees' accuracy estimate for M MLPs."""
        return self.model.predict(layer_statistics(weights, biases))
