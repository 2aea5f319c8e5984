"""The one training core: N MLPs, each with its own `Regime` and seed, trained together step by step.

A run is (architecture, regime, seed). `Training.reset` draws model i from its seed in a fixed order:
one `torch.Generator` seeded with the seed draws the weights (layer by layer: weight, then bias),
which the regime's init scale multiplies; then the run's share of the training split (only when it is
below one); then every epoch's order. `Training.step` runs one minibatch for every model: loss and
gradients (`BatchedMLP.loss_and_gradients`), an optional `gradient_hook` that changes the gradients (an
env's perturbation, the guide's L1 or ENN term), then each model's optimizer (`BatchedOptimizer`) with
optional per-element update scales (the env's per-block learning rates).

Everything that trains an MLP uses this: the env (`gi_envs.task`), the zoo, the guide's rows and
`inspect`'s fresh MLPs. So a zoo run is an env episode under the zero action (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from gi_envs.batched_mlp import BatchedMLP, MinibatchSampler, gradient_rms
from gi_envs.datasets import Dataset, Split
from gi_envs.optimizers import BatchedOptimizer, Scales
from gi_envs.regime import Regime
from gi_envs.spec import MLPSpec

GradientHook = Callable[[list[torch.Tensor], list[torch.Tensor]], None]
"""Called with (weight gradients, bias gradients) of a step, each (N, ...); it may change or replace entries."""


class Training:
    """N MLPs of `mlp` under training on `data`, model i following its own regime from its own seed.

    :param mlp: the architecture (and init) of every model.
    :param data: the data set; models train on its training split.
    :param n_models: N.
    """

    def __init__(self, mlp: MLPSpec, data: Dataset, n_models: int):
        self.spec = mlp
        self.data = data
        self.n_models = n_models
        self.mlp: BatchedMLP = mlp.build(n_models)
        self.sampler = MinibatchSampler(len(data.train), min(Regime.batch_size, len(data.train)), n_models)
        self.optimizer = BatchedOptimizer(self.mlp.weights + self.mlp.biases)
        self.regimes: list[Regime] = [Regime()] * n_models
        self.seeds: list[int] = [0] * n_models  # each MLP's seed, as its last reset drew it

    def reset(self, index: int, seed: int, regime: Regime) -> None:
        """MLP `index` becomes a fresh run of `regime` drawn from `seed` (see the module docstring)."""
        generator = torch.Generator().manual_seed(int(seed))
        self.mlp.initialize(index, generator, self.spec.init)
        if regime.init_scale != 1.0:
            with torch.no_grad():
                for w in self.mlp.weights:
                    w[index] *= regime.init_scale
        n_train = len(self.data.train)
        regime.check_fits(n_train)
        self.sampler.reset(index, generator, regime.batch_size, regime.subset_size(n_train))
        self.optimizer.reset(index, regime)
        self.regimes[index] = regime
        self.seeds[index] = int(seed)

    def step(self, gradient_hook: GradientHook | None = None, update_scales: tuple[Scales, Scales] | None = None
             ) -> torch.Tensor:
        """One minibatch for every model; returns each model's minibatch loss (N,) before the update.

        :param gradient_hook: changes the step's gradients before the optimizers see them.
        :param update_scales: (per weight matrix (N, out, in), per bias (N, out)) multipliers of each
            element's update, i.e. of its learning rate; ``None`` is every model's plain optimizer.
        """
        idx = self.sampler.next_indices()
        train = self.data.train
        self.optimizer.to_gradient_point()
        loss, weight_grads, bias_grads = self.mlp.loss_and_gradients(train.x[idx], train.y[idx],
                                                                     self.sampler.sample_weights())
        if gradient_hook is not None:
            gradient_hook(weight_grads, bias_grads)
        scales = None if update_scales is None else [*update_scales[0], *update_scales[1]]
        self.optimizer.step(weight_grads + bias_grads, scales)
        return loss

    def run(self, steps: int, gradient_hook: GradientHook | None = None) -> None:
        """`steps` plain steps (with the optional hook) for every model."""
        for _ in range(steps):
            self.step(gradient_hook)

    def evaluate(self, split: Split, models: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and accuracy of every model (or of `models`) on `split`; see `BatchedMLP.evaluate`."""
        return self.mlp.evaluate(split.x, split.y, models)


def perturbation_hook(perturbation: Sequence[torch.Tensor], scale: float) -> GradientHook:
    """Adds `perturbation` (per weight matrix, (N, out, in)) to the weight gradients in units of each model's
    gradient RMS, times `scale`: a perturbation means as much at the first step as at the last. Biases keep
    their plain gradient."""

    def hook(weight_grads: list[torch.Tensor], bias_grads: list[torch.Tensor]) -> None:
        for g, p in zip(weight_grads, perturbation):
            g.addcmul_(p, (scale * gradient_rms(g))[:, None, None])

    return hook


def train_mlps(mlp: MLPSpec, data: Dataset, regime: Regime, seeds: Sequence[int], epochs: int) -> BatchedMLP:
    """One MLP per seed trained `epochs` epochs of `regime` (the same regime for all): plain training."""
    training = Training(mlp, data, len(seeds))
    for i, seed in enumerate(seeds):
        training.reset(i, seed, regime)
    training.run(epochs * regime.steps_per_epoch(len(data.train)))
    return training.mlp
