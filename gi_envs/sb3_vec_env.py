"""A Gymnasium same-step vector env seen through Stable-Baselines3's `VecEnv` API.

SB3 does not take a `gymnasium.vector.VectorEnv`: it wants lists of info dicts, the last
observation of a finished episode in `infos[i]["terminal_observation"]`, the reset's infos in
`reset_infos`, and seeds handed over by `seed()` before `reset()`. This adapter gives exactly
what `DummyVecEnv` over the same single envs would give (a test checks it), so any SB3 or
sb3-contrib algorithm, `VecMonitor` and `VecNormalize` run on `GradInstructorVectorEnv`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from gi_envs.grad_instructor_env import ENV_ID
from gi_envs.observation import flat_space, flatten


class SB3VecEnv(VecEnv):
    """Stable-Baselines3 `VecEnv` over a Gymnasium `VectorEnv` with same-step autoreset.

    ```python
    import gymnasium as gym, gi_envs
    from stable_baselines3 import PPO
    venv = gi_envs.make_sb3_vec_env(num_envs=16, seed=0)      # the native vector env, same-step autoreset
    PPO("MlpPolicy", venv).learn(2_000)
    ```

    :param env: the vector env; its `metadata["autoreset_mode"]` must be `AutoresetMode.SAME_STEP`.
    :param flatten_observation: hand a `Dict` observation (image and training state) over as one flat vector,
        the image first (`gi_envs.observation.flatten`): what every algorithm takes, CrossQ and ARS
        included; ``False`` keeps the `Dict` for SB3's ``MultiInputPolicy``.
    """

    def __init__(self, env: VectorEnv, flatten_observation: bool = False):
        mode = env.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(
                f"SB3VecEnv needs a vector env with autoreset_mode=AutoresetMode.SAME_STEP, got {mode!r}; "
                "build it with vectorization_mode='vector_entry_point', autoreset_mode=AutoresetMode.SAME_STEP, "
                "or pass vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP} to 'sync'/'async' "
                "(make_sb3_vec_env does this for you)"
            )
        self.env = env
        self._actions: np.ndarray | None = None
        self.flatten = flatten_observation and isinstance(env.single_observation_space, gym.spaces.Dict)
        space = flat_space(env.single_observation_space) if self.flatten else env.single_observation_space
        super().__init__(env.num_envs, space, env.single_action_space)

    def _observe(self, observation: Any) -> Any:
        return flatten(observation) if self.flatten else observation

    def reset(self) -> VecEnvObs:
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = self._options[0] if any(self._options) else None
        obs, infos = self.env.reset(seed=seeds, options=options)
        self.reset_infos = unbatch_infos(infos, self.num_envs)
        self._reset_seeds()
        self._reset_options()
        return self._observe(obs)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.env.action_space.shape)

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async() must come before step_wait()"
        obs, rewards, terminated, truncated, infos = self.env.step(self._actions)
        dones = terminated | truncated
        step_infos = unbatch_infos(infos, self.num_envs)
        final_infos = unbatch_infos(infos.get("final_info", {}), self.num_envs)
        for i in np.flatnonzero(dones):
            # SB3's convention: infos[i] is the finished episode's last info, the new episode's in reset_infos
            self.reset_infos[i] = step_infos[i]
            step_infos[i] = final_infos[i]
            final = infos["final_obs"][i]
            step_infos[i]["terminal_observation"] = self._observe({k: v[None] for k, v in final.items()})[0] \
                if self.flatten else final
        for i, info in enumerate(step_infos):
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        self._actions = None
        return self._observe(obs), rewards.astype(np.float32), dones, step_infos

    def close(self) -> None:
        self.env.close()

    # Each sub-env answers for itself, through the vector env's `get_attr` / `call` (Gymnasium's API).
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = self.env.get_attr(attr_name)
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(list(self._get_indices(indices))) != self.num_envs:
            raise ValueError(f"the {self.num_envs} sub-envs share one configuration: set_attr({attr_name!r}) sets it "
                             "for all of them (indices=None)")
        self.env.set_attr(attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        results = self.env.call(method_name, *method_args, **method_kwargs)
        return [results[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        """Each sub-env's RGB frame, where the vector env renders (``render_mode="rgb_array"``): what SB3's
        `VecVideoRecorder` records."""
        frames = self.env.render() if getattr(self.env, "render_mode", None) == "rgb_array" else None
        return list(frames) if frames is not None else [None for _ in range(self.num_envs)]


def unbatch_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's dict of masked arrays to one plain dict per sub-env (nested dicts included)."""
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, values in infos.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = infos.get(f"_{key}", np.ones(num_envs, dtype=bool))
        nested = unbatch_infos(values, num_envs) if isinstance(values, dict) else None
        for i in np.flatnonzero(mask):
            value = nested[i] if nested is not None else values[i]
            out[i][key] = value.item() if isinstance(value, np.generic) else value
    return out


def make_sb3_vec_env(num_envs: int, seed: int | None = None, flatten_observation: bool = False,
                     **env_kwargs: Any) -> SB3VecEnv:
    """`num_envs` MLPs in the native GradInstructor vector env, behind SB3's API, seeded for the next reset
    (`flatten_observation`: see `SB3VecEnv`)."""
    venv = SB3VecEnv(gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="vector_entry_point",
                                  autoreset_mode=AutoresetMode.SAME_STEP, **env_kwargs), flatten_observation)
    venv.seed(seed)
    return venv
