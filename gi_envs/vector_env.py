"""GradInstructor-v0 natively vectorized: N MLPs in one process, stepped by one batched trainer."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gi_envs.family_task import make_task
from gi_envs.grad_instructor_env import SEED_HIGH
from gi_envs.observation import select
from gi_envs.render import RENDER_MODES, check_render_mode, render_frame, shown_image
from gi_envs.task import EnvConfig, StepResult


class GradInstructorVectorEnv(VectorEnv):
    """`num_envs` copies of `GradInstructorEnv` whose MLPs train together in batched matmuls.

    Sub-env i behaves exactly as a single `GradInstructorEnv` would with the same seed and
    actions (tests check it against `SyncVectorEnv` in both autoreset modes): each sub-env keeps
    its own random generator, from which it draws every new MLP's seed.

    Autoreset, chosen with the `autoreset_mode` keyword and declared in `metadata`:

    - `AutoresetMode.NEXT_STEP` (the default, Gymnasium's own): the step that ends an episode
      returns its last observation; the next step resets that sub-env (its action is ignored, its
      reward is 0) and returns the new episode's first observation with the reset's info. Gymnasium's
      vector wrappers (`RecordEpisodeStatistics`, `NormalizeObservation`, ...) and CleanRL-style loops
      expect this.
    - `AutoresetMode.SAME_STEP`: the step that ends an episode already returns the next episode's
      first observation; the infos hold the last one in `infos["final_obs"]` and the last step's
      info in `infos["final_info"]`, each with its `_final_obs` / `_final_info` mask. This is what
      Stable-Baselines3 expects (`gi_envs.SB3VecEnv` builds the env with it).

    ```python
    envs = gym.make_vec("GradInstructor-v0", num_envs=32, vectorization_mode="vector_entry_point")
    envs = gym.make_vec("GradInstructor-v0", num_envs=32, vectorization_mode="vector_entry_point",
                        autoreset_mode=AutoresetMode.SAME_STEP)
    ```

    :param num_envs: number of sub-envs (MLPs).
    :param autoreset_mode: `AutoresetMode.NEXT_STEP` (default) or `AutoresetMode.SAME_STEP` (or their
        string values ``"NextStep"``, ``"SameStep"``).
    :param max_episode_steps: a time limit passed in by `gym.make_vec`; it sets `episode_length`
        unless that is given explicitly, which wins.
    :param kwargs: the keyword arguments of `GradInstructorEnv`.
    """

    metadata = {"render_modes": RENDER_MODES, "render_fps": 4, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 max_episode_steps: int | None = None, render_mode: str | None = None, **kwargs: Any):
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs={num_envs!r} must be a positive integer")
        modes = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in modes:
            raise ValueError(f"autoreset_mode={autoreset_mode!r} is not allowed; expected one of {list(modes)}")
        if max_episode_steps is not None and "episode_length" not in kwargs:
            kwargs["episode_length"] = max_episode_steps
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.render_mode = check_render_mode(render_mode)
        self.config = EnvConfig.from_kwargs(**kwargs)
        self.num_envs = int(num_envs)
        self.task = make_task(self.config, n_models=self.num_envs)
        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._env_rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: ended at the last step
        self._accuracies: list[list[float]] = [[] for _ in range(self.num_envs)]  # each episode's, for render()

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Fresh MLPs in every sub-env. An int seed gives sub-env i the seed `seed + i`."""
        super().reset(seed=seed if isinstance(seed, int) else None)
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"{len(seeds)} seeds given for {self.num_envs} sub-envs")
        val_accuracy = np.zeros(self.num_envs)
        for i, s in enumerate(seeds):
            if s is not None or self._env_rngs[i] is None:
                self._env_rngs[i], _ = seeding.np_random(s)
            val_accuracy[i] = self._new_mlp(i)
        self._needs_reset[:] = False
        nobody = np.zeros(self.num_envs, dtype=bool)
        zeros = np.zeros(self.num_envs)
        return self.task.observations(), self._infos(val_accuracy, zeros, nobody, zeros, nobody, nobody)

    def _new_mlp(self, i: int) -> float:
        """Reset sub-env i's MLP with a seed from its own generator, as `GradInstructorEnv.reset` does."""
        rng = self._env_rngs[i]
        assert rng is not None, "reset() must be called before step()"
        val_accuracy = self.task.reset_mlp(i, int(rng.integers(SEED_HIGH)))
        self._accuracies[i] = [val_accuracy]
        return val_accuracy

    def _infos(self, val_accuracy: np.ndarray, train_loss: np.ndarray, diverged: np.ndarray,
               test_accuracy: np.ndarray, stepped: np.ndarray, ended: np.ndarray,
               seeds: list[int] | None = None) -> dict[str, Any]:
        """Every info key, at reset and at every step, in Gymnasium's layout (values, and a ``_key`` mask of the
        sub-envs it holds for): `val_accuracy`, `mlp_seed` and the drawn regime's fields for every sub-env,
        `train_loss` and `diverged` for those that stepped, `test_accuracy` for those whose episode ended; the drawn
        regime's (or task's) fields under `randomize_regime` (or `task_family`). `seeds` default to the MLPs each
        sub-env holds now."""
        everyone = np.ones(self.num_envs, dtype=bool)
        seeds = list(self.task.seeds) if seeds is None else seeds
        infos = {**_masked("val_accuracy", val_accuracy, everyone),
                 **_masked("mlp_seed", np.array(seeds, dtype=np.int64), everyone),
                 **_masked("train_loss", train_loss, stepped), **_masked("diverged", diverged, stepped),
                 **_masked("test_accuracy", test_accuracy, ended)}
        described = [self.task.describe(i) for i in range(self.num_envs)]
        for key in described[0]:
            infos.update(_masked(key, np.array([d[key] for d in described]), everyone))
        return infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if any(rng is None for rng in self._env_rngs):
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions of shape {actions.shape} do not fit the action space {self.action_space.shape}")
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next_step(actions)
        return self._step_same_step(actions)

    def _record(self, result: StepResult) -> None:
        for i, accuracy in enumerate(result.val_accuracy):
            self._accuracies[i].append(float(accuracy))

    def _step_next_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Sub-envs that ended at the last step start a new episode now; the others step."""
        resetting = self._needs_reset.copy()
        actions = np.where(resetting[:, None], 0.0, actions).astype(np.float32)  # ignored: those MLPs are replaced
        result = self.task.step(actions)  # trains every MLP at once; the resetting ones are redrawn below
        self._record(result)
        stepped = ~resetting
        observation, reward = result.observation, result.reward.copy()
        terminated, truncated = result.terminated & stepped, result.truncated & stepped
        val_accuracy = result.val_accuracy.copy()
        for i in np.flatnonzero(resetting):
            val_accuracy[i] = self._new_mlp(int(i))
        if resetting.any():
            observation = self.task.observations()
            reward[resetting] = 0.0
        ended = terminated | truncated
        self._needs_reset = ended
        return observation, reward, terminated, truncated, self._infos(
            val_accuracy, result.train_loss, result.diverged, result.test_accuracy, stepped, ended)

    def _step_same_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Every sub-env steps; one whose episode ends starts the next one within the same call."""
        result = self.task.step(actions)
        self._record(result)
        ended = result.terminated | result.truncated
        running = ~ended
        nobody = np.zeros(self.num_envs, dtype=bool)
        val_accuracy = result.val_accuracy.copy()
        extra: dict[str, Any] = {}
        observation = result.observation
        if ended.any():
            everyone = np.ones(self.num_envs, dtype=bool)
            final_info = self._infos(result.val_accuracy, result.train_loss, result.diverged, result.test_accuracy,
                                     everyone, everyone)  # the finished episodes' last step, before their reset
            final_info = {k: v for k, v in final_info.items() if not k.startswith("_")}
            final_info = {key: info for k, v in final_info.items() for key, info in _masked(k, v, ended).items()}
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = select(result.observation, i)
                val_accuracy[i] = self._new_mlp(int(i))
            observation = self.task.observations()
            extra = {"final_obs": final_obs, "_final_obs": ended, "final_info": final_info,
                     "_final_info": ended.copy()}
        infos = self._infos(val_accuracy, result.train_loss, result.diverged, result.test_accuracy, running, nobody)
        return observation, result.reward, result.terminated, result.truncated, {**infos, **extra}

    def render(self) -> tuple[np.ndarray, ...] | None:
        """With ``render_mode="rgb_array"``: one RGB frame per sub-env (`GradInstructorEnv.render`)."""
        if self.render_mode is None:
            gym.logger.warn("render() was called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        observation = self.task.observations()
        frames = []
        for i in range(self.num_envs):
            image, title = shown_image(select(observation, i))
            frames.append(render_frame(image, self._accuracies[i], self.config.episode_length, title))
        return tuple(frames)

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """`name` of every sub-env, as `SyncVectorEnv.call` gives it: called with the arguments if it is a method.
        The sub-envs share one configuration, so each answers what the vector env holds (``render`` gives each
        sub-env's own frame)."""
        if name == "render":
            frames = self.render()
            return tuple(frames) if frames is not None else (None,) * self.num_envs
        value = getattr(self, name)
        if callable(value):
            value = value(*args, **kwargs)
        return (value,) * self.num_envs

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """Attribute `name` of every sub-env (`SyncVectorEnv.get_attr`'s API)."""
        return (getattr(self, name),) * self.num_envs

    def set_attr(self, name: str, values: Any) -> None:
        """Set `name` for the sub-envs: one value for all (they share one configuration)."""
        if isinstance(values, (list, tuple)):
            if len(values) != self.num_envs or any(v != values[0] for v in values):
                raise ValueError(f"the {self.num_envs} sub-envs share one configuration: set_attr({name!r}) takes one "
                                 "value, or the same value for each")
            values = values[0]
        setattr(self, name, values)


def _masked(key: str, values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """`{key: values where mask else 0, "_key": mask}`, the layout of gymnasium's vector infos."""
    values = np.asarray(values)
    return {key: np.where(mask, values, np.zeros_like(values)), f"_{key}": mask.copy()}
