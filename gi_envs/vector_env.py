"""GradInstructor-v0 natively vectorized: N MLPs in one process, stepped by one batched trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gi_envs.grad_instructor_env import SEED_HIGH
from gi_envs.observation import select
from gi_envs.task import EnvConfig, TrainingTask


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

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 max_episode_steps: int | None = None, **kwargs: Any):
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
        self.config = EnvConfig.from_kwargs(**kwargs)
        self.num_envs = int(num_envs)
        self.task = TrainingTask(self.config, n_models=self.num_envs)
        self.single_observation_space = self.task.observation_space
        self.single_action_space = self.task.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._env_rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: ended at the last step

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
        mlp_seeds = np.zeros(self.num_envs, dtype=np.int64)
        for i, s in enumerate(seeds):
            if s is not None or self._env_rngs[i] is None:
                self._env_rngs[i], _ = seeding.np_random(s)
            mlp_seeds[i], val_accuracy[i] = self._new_mlp(i)
        self._needs_reset[:] = False
        everyone = np.ones(self.num_envs, dtype=bool)
        infos = {"val_accuracy": val_accuracy, "_val_accuracy": everyone, "mlp_seed": mlp_seeds,
                 "_mlp_seed": everyone.copy()}
        if self.config.distribution is not None:
            regimes = [self.task.regime(i).to_dict() for i in range(self.num_envs)]
            for key in regimes[0]:
                infos[key] = np.array([r[key] for r in regimes])
                infos[f"_{key}"] = everyone.copy()
        return self.task.observations(), infos

    def _new_mlp(self, i: int) -> tuple[int, float]:
        """Reset sub-env i's MLP with a seed from its own generator, as `GradInstructorEnv.reset` does."""
        rng = self._env_rngs[i]
        assert rng is not None, "reset() must be called before step()"
        mlp_seed = int(rng.integers(SEED_HIGH))
        return mlp_seed, self.task.reset_mlp(i, mlp_seed)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if any(rng is None for rng in self._env_rngs):
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != self.action_space.shape:
            raise ValueError(f"actions of shape {actions.shape} do not fit the action space {self.action_space.shape}")
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next_step(actions)
        return self._step_same_step(actions)

    def _step_next_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Sub-envs that ended at the last step start a new episode now; the others step."""
        resetting = self._needs_reset.copy()
        actions = np.where(resetting[:, None], 0.0, actions).astype(np.float32)  # ignored: those MLPs are replaced
        result = self.task.step(actions)  # trains every MLP at once; the resetting ones are redrawn below
        stepped = ~resetting
        observation, reward = result.observation, result.reward.copy()
        terminated, truncated = result.terminated & stepped, result.truncated & stepped
        val_accuracy = result.val_accuracy.copy()
        mlp_seeds = np.zeros(self.num_envs, dtype=np.int64)
        for i in np.flatnonzero(resetting):
            mlp_seeds[i], val_accuracy[i] = self._new_mlp(int(i))
        if resetting.any():
            observation = self.task.observations()
            reward[resetting] = 0.0
        ended = terminated | truncated
        infos: dict[str, Any] = {"val_accuracy": val_accuracy, "_val_accuracy": np.ones(self.num_envs, dtype=bool)}
        if stepped.any():
            infos.update(_masked("train_loss", result.train_loss, stepped))
            infos.update(_masked("diverged", result.diverged, stepped))
        if ended.any():
            infos.update(_masked("test_accuracy", result.test_accuracy, ended))
        if resetting.any():
            infos.update(_masked("mlp_seed", mlp_seeds, resetting))
        self._needs_reset = ended
        return observation, reward, terminated, truncated, infos

    def _step_same_step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Every sub-env steps; one whose episode ends starts the next one within the same call."""
        result = self.task.step(actions)
        ended = result.terminated | result.truncated
        running = ~ended

        infos: dict[str, Any] = {}
        val_accuracy = result.val_accuracy.copy()
        if ended.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            mlp_seeds = np.zeros(self.num_envs, dtype=np.int64)
            for i in np.flatnonzero(ended):
                final_obs[i] = select(result.observation, i)
                mlp_seeds[i], val_accuracy[i] = self._new_mlp(int(i))
            observation = self.task.observations()
            infos["final_obs"], infos["_final_obs"] = final_obs, ended
            infos["final_info"] = {
                **_masked("val_accuracy", result.val_accuracy, ended),
                **_masked("train_loss", result.train_loss, ended),
                **_masked("diverged", result.diverged, ended),
                **_masked("test_accuracy", result.test_accuracy, ended),
            }
            infos["_final_info"] = ended.copy()
            infos.update(_masked("mlp_seed", mlp_seeds, ended))
        else:
            observation = result.observation
        infos["val_accuracy"], infos["_val_accuracy"] = val_accuracy, np.ones(self.num_envs, dtype=bool)
        if running.any():
            infos.update(_masked("train_loss", result.train_loss, running))
            infos.update(_masked("diverged", result.diverged, running))
        return observation, result.reward, result.terminated, result.truncated, infos


def _masked(key: str, values: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """`{key: values where mask else 0, "_key": mask}`, the layout of gymnasium's vector infos."""
    return {key: np.where(mask, values, np.zeros_like(values)), f"_{key}": mask.copy()}
