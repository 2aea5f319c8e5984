"""GradInstructor-v0: training a small MLP, one episode per MLP, as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.envs.registration import EnvSpec

from gi_envs.family_task import make_task
from gi_envs.observation import select
from gi_envs.render import RENDER_MODES, check_render_mode, render_frame, shown_image
from gi_envs.task import EnvConfig, StepResult, arguments_table

ENV_ID = "GradInstructor-v0"  # registered by `import gi_envs`
SEED_HIGH = 2**63 - 1


def check_mlp_seed(value: object) -> int:
    """A reset's ``mlp_seed`` option as an int in [0, SEED_HIGH), or a ValueError naming it and what is allowed."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and 0 <= value < SEED_HIGH
    if not ok:
        raise ValueError(f"reset option mlp_seed={value!r} is not allowed; expected an integer in [0, 2**63 - 1)")
    return int(value)  # type: ignore[arg-type]


@contextmanager
def worker_threads() -> Iterator[None]:
    """In a worker process (AsyncVectorEnv, SubprocVecEnv) the env's work runs on one torch thread: the workers
    already share the cores, and one thread avoids OpenMP's deadlock in children forked from a process that used
    it. The process's own thread count is restored after each call, so a user's code there keeps its setting."""
    if multiprocessing.parent_process() is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class GradInstructorEnv(gym.Env[np.ndarray, np.ndarray]):
    """
    ## Description

    Each episode trains one freshly initialised MLP classifier with its regime's optimizer (plain SGD
    by default; SGD with momentum or AdamW on request). At every step the agent sees a low-resolution
    image of the MLP's weights and chooses a coarse, per-layer action on its updates; the env runs
    `steps_per_action` minibatches with it and pays the MLP's held-out (validation) accuracy. The
    zero action is exactly the plain optimizer in every action mode, so "did the agent help?" always
    has a free baseline; in `scale` mode a uniform action is the optimizer at another learning rate,
    so a tuned learning rate is the real bar. The idea comes from Grad-Instructor (arXiv 2406.10559);
    every design choice here is ours. The MLPs train in the one training core,
    `gi_envs.training.Training`, which the zoo, the guide and `inspect` share.

    ## Action Space

    `Box(-1, 1, (L * gh * gw,), float32)`: for each of the L weight matrices (input layer first),
    a coarse `action_grid` = (gh, gw) grid, row-major, flattened layer after layer. Each grid is
    upsampled (nearest neighbour) to its matrix's shape, so one cell covers one block of weights.

    - `action_mode="scale"` (default): the update of every weight in a block (for SGD, its gradient
      times the learning rate) is multiplied by `max_scale ** a`, from 1/`max_scale` to `max_scale`:
      per-block learning rates, for momentum and Adam as for SGD, the lever the paper's "adjusts
      gradient magnitudes according to the training stage" describes. A bias gets the geometric
      mean of the multipliers along its row (its output unit's weights), so a uniform action `a` is
      exactly the optimizer at learning rate `lr * max_scale ** a`, and `action_grid=(1, 1)` is
      per-layer learning-rate control.
    - `action_mode="perturb"`: `a` times `perturbation_scale` times the RMS of the layer's current
      minibatch gradient is added to each weight's gradient; biases get their plain gradient.

    Values outside [-1, 1] are clipped; a wrongly shaped action or a NaN raises `ValueError`. The
    grid may not be larger than any weight matrix.

    ## Observation Space

    `Box(-20, 20, (S * L, H, W), float32)`, the weight image (see `gi_envs.weight_image`): one group
    of L channels, one per weight matrix, for each of the S entries of `image_stats`, in that order.
    With the default `("mean", "rms")` on digits 64-32-10 at resolution 0.15 it is (4, 5, 10):

    | channel | meaning                                                          | size                          |
    |---------|------------------------------------------------------------------|-------------------------------|
    | 0       | `mean`: first weight matrix (hidden x input), area-averaged        | 5 x 10                        |
    | 1       | `mean`: last weight matrix (classes x hidden)                      | 2 x 5, zero-padded to 5 x 10  |
    | 2       | `rms`: first weight matrix, root mean square of each block         | 5 x 10                        |
    | 3       | `rms`: last weight matrix                                          | 2 x 5, zero-padded to 5 x 10  |

    Each `mean` channel is normalised by a constant of its layer, so that pixels have about the
    same scale in every layer at initialisation (std ~0.58 at PyTorch's default init); each `rms`
    channel is multiplied by sqrt(fan_in) (about 0.58 everywhere at init). NaN or inf weights (a
    diverged MLP) are mapped into the bounds, so the observation is always finite.

    `observation` adds what a practitioner looks at too (`gi_envs.observation`): ``weight_change``,
    the image of the weights' change since the last step (x20, zero at reset) as as many channels
    again, where each block's rms is its step size; ``training_state``, a vector of the episode's
    progress, the validation accuracy now and a step before, the log of 1 + the training loss now
    and a step before, and the last action. With ``training_state`` the observation is
    `Dict({"image": Box(...), "state": Box(-1000, 1000, (5 + action_dim,))})`.

    Shape-free parts (`gi_envs.layer_observation`): ``layer_stats`` and ``layer_change_stats``, per-layer
    statistics of the weights and of their change in `max_hidden_layers` + 1 layer slots. Without an image part
    the observation is a flat `Box(-1000, 1000, (state_dim,))` of the same size for every MLP of up to
    `max_hidden_layers` hidden layers, and with `max_hidden_layers` the action has one grid per layer slot too.
    `task_family` draws every MLP's data set, shape, optimizer and regime (`gi_envs.TASK_SPLITS`) and needs such an
    observation; the reset's and every step's `info` then hold `dataset`, `hidden_sizes`, `depth` and the regime.

    ## Rewards

    `reward="accuracy"` (default): validation accuracy in [0, 1] after the step, on the first
    `eval_samples` samples of the validation split (carved from the training set; the test split
    is never used for rewards). `reward="delta"`: the change of that accuracy over the step.
    A diverged MLP counts as accuracy 0.

    ## Starting State

    `reset(seed=...)` draws a new MLP's seed from the env's seeded generator, and the MLP (init
    `default` or `he`, times `init_scale`), its share of the training data and its data order from
    that seed: the same seed gives the same trajectory for the same actions. `reset(options={"mlp_seed":
    s})` replays the MLP of seed `s` (a zoo run's, say).

    The MLP trains with the regime of `lr`, `batch_size`, `optimizer`, `weight_decay`, `init_scale` and
    `data_share`, or, with `randomize_regime`, with its own regime drawn from its seed by a
    `gi_envs.RegimeDistribution`: ``True`` is the default distribution (plain SGD; the zoo draws from
    ``any-optimizer``, the same with SGD, momentum and Adam): learning rate log-uniform
    in [0.005, 0.5] (SGD's; momentum x0.1, Adam x0.02), init scale uniform in [0.25, 2], weight decay
    log-uniform in [1e-5, 1e-2] for half the MLPs, data share uniform in [0.1, 1], batch size 16, 32,
    64 or 128. A name of `gi_envs.REGIME_DISTRIBUTIONS` (``any-optimizer``, ``wide-lr``) or a mapping
    of the distribution's fields (over the default) choose another. The reset's `info` then holds the
    drawn regime: `lr`, `batch_size`, `init_scale`, `weight_decay`, `data_share`, `optimizer`.

    ## Episode End

    - Truncation: after `episode_length` steps, the one knob for it:
      `gym.make("GradInstructor-v0", episode_length=50)` gives 50-step episodes, and `env.spec.max_episode_steps`
      says 50. (`gym.make`'s own `max_episode_steps` adds a `TimeLimit` that can only cut episodes shorter.)
    - Termination: the MLP diverged (a NaN or inf loss); `info["diverged"]` is then True.

    `reset` returns `info` with `val_accuracy` and `mlp_seed`, the seed of the MLP's init and data
    order (see `TrainingTask.reset_mlp`). `step`'s `info` holds `val_accuracy`, `train_loss`
    (mean over the step's minibatches) and `diverged` at every step, and `test_accuracy` (whole
    test split) at the step that ends the episode.

    ## Arguments

    {arguments}

    ```python
    import gymnasium as gym, gi_envs
    env = gym.make("GradInstructor-v0", dataset="mnist", hidden_sizes=(100,), episode_length=50)
    env = gym.make("GradInstructor-v0", action_mode="perturb", image_stats=("mean",))   # the v0 defaults before
    env = gym.make("GradInstructor-v0", randomize_regime=True, observation=("weights", "training_state"))
    env = gym.make("GradInstructor-v0", optimizer="adam", lr=1e-3, randomize_regime={"lr_range": [0.001, 1.0]})
    ```

    A bad value raises `ValueError` naming the argument and what is allowed.

    ## Vectorized environment

    `gym.make_vec("GradInstructor-v0", num_envs=N, vectorization_mode="vector_entry_point")` gives
    `GradInstructorVectorEnv`: N MLPs trained together in batched matmuls, Gymnasium's NEXT_STEP
    autoreset by default (`autoreset_mode=AutoresetMode.SAME_STEP` for Stable-Baselines3, which
    `gi_envs.make_sb3_vec_env` sets).

    ## Version History

    * v0, 2026-12: one training core and one regime for the env and the zoo: `optimizer`,
      `weight_decay`, `init_scale`, `data_share`; `randomize_regime` draws whole regimes (the zoo's
      distribution, and any other) and reports them at reset; `observation` parts; the reset option
      `mlp_seed`. The defaults train exactly as before (checked bit for bit against the code before the change).
    * v0, 2026-11-25: `randomize_regime` (off by default: nothing changes unless it is set).
    * v0, 2026-11: `action_mode="scale"` (per-block learning rates, `max_scale` 16) and
      `image_stats=("mean", "rms")` became the defaults, after the benchmark showed agents beating
      the zero action there (the `perturb` mode with mean images gave them nothing to learn);
      `episode_length` alone sets the episode length; the vector env defaults to NEXT_STEP autoreset.
    * v0: initial version (`perturb` actions, mean images, SAME_STEP vector env).
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4}

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        self._spec: EnvSpec | None = None
        self.render_mode = check_render_mode(render_mode)
        self.config = EnvConfig.from_kwargs(**kwargs)
        with worker_threads():
            self.task = make_task(self.config, n_models=1)
        self.observation_space = self.task.observation_space
        self.action_space = self.task.action_space
        self._ended = False  # the episode ended: step() needs a reset() first
        self._accuracies: list[float] = []  # this episode's validation accuracy, at reset and after each step

    @property
    def spec(self) -> EnvSpec | None:
        """The registration `gym.make` used, with `max_episode_steps` = this env's `episode_length`."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        # gym.make sets a spec without a time limit (the env truncates itself): make it say the truth
        if value is not None and value.max_episode_steps != self.config.episode_length:
            value = dataclasses.replace(value, max_episode_steps=self.config.episode_length)
        self._spec = value

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        """A fresh MLP. `options={"mlp_seed": s}` replays the MLP of seed `s` (a zoo run's, say) instead of
        drawing a new seed."""
        super().reset(seed=seed)
        mlp_seed = int(self.np_random.integers(SEED_HIGH))
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options={options!r} is not allowed; expected None or a dict such as {{'mlp_seed': 3}}")
        unknown = sorted(set(options or {}) - {"mlp_seed"}, key=str)
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; expected 'mlp_seed'")
        if options and "mlp_seed" in options:
            mlp_seed = check_mlp_seed(options["mlp_seed"])
        with worker_threads():
            val_accuracy = self.task.reset_mlp(0, mlp_seed)
        self._ended = False
        self._accuracies = [val_accuracy]
        info: dict[str, Any] = {"val_accuracy": val_accuracy, "mlp_seed": mlp_seed, **self._regime_info()}
        return select(self.task.observations(), 0), info

    def _regime_info(self) -> dict[str, Any]:
        """The drawn regime (under `randomize_regime`) or task (under `task_family`), in every info: what this MLP
        trains with."""
        return self.task.describe(0)

    def render(self) -> np.ndarray | None:
        """With ``render_mode="rgb_array"``: an RGB frame of the weight image and this episode's validation
        accuracy (`gi_envs.render`); ``None`` without a render mode, as Gymnasium envs do."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        image, title = shown_image(select(self.task.observations(), 0))
        return render_frame(image, self._accuracies, self.config.episode_length, title)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._ended:
            raise gym.error.ResetNeeded("the episode has ended (terminated or truncated): call reset() before step()")
        action = np.asarray(action, dtype=np.float32)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape} does not fit the action space {self.action_space.shape}")
        if np.isnan(action).any():
            raise ValueError(f"action contains NaN at position(s) {np.flatnonzero(np.isnan(action)).tolist()}; "
                             "expected finite values in [-1, 1]")
        with worker_threads():
            result = self.task.step(action[None])
        self._ended = bool(result.terminated[0] or result.truncated[0])
        self._accuracies.append(float(result.val_accuracy[0]))
        info = {**step_info(result, 0), "mlp_seed": self.task.seeds[0], **self._regime_info()}
        return (
            select(result.observation, 0),
            float(result.reward[0]),
            bool(result.terminated[0]),
            bool(result.truncated[0]),
            info,
        )



if GradInstructorEnv.__doc__:  # the arguments table comes from EnvConfig, its one source (None under python -OO)
    GradInstructorEnv.__doc__ = GradInstructorEnv.__doc__.replace(
        "    {arguments}", "\n".join("    " + line for line in arguments_table().splitlines()))

def step_info(result: StepResult, i: int) -> dict[str, Any]:
    """The info dict of model `i` after a step."""
    info: dict[str, Any] = {
        "val_accuracy": float(result.val_accuracy[i]),
        "train_loss": float(result.train_loss[i]),
        "diverged": bool(result.diverged[i]),
    }
    if result.terminated[i] or result.truncated[i]:
        info["test_accuracy"] = float(result.test_accuracy[i])
    return info
