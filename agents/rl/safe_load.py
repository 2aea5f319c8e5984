"""Loading a saved agent without running code from its file.

Stable-Baselines3 saves an agent's attributes in the zip's ``data`` entry as JSON, and those it cannot write
as JSON (spaces, schedules, the policy class, its keyword arguments, buffers) as cloudpickle bytes marked
``:serialized:``, which `BaseAlgorithm.load` unpickles, so a crafted entry runs code as the file loads.
SB3 skips the unpickling of every key its ``custom_objects`` supply. `safe_custom_objects` supplies each
such key from what the run's own ``config.yaml`` and env arguments rebuild (the policy class and its
arguments, the spaces, the schedules and action noise, or nothing for what the model rebuilds itself);
a key it cannot rebuild refuses the file before anything is unpickled. The tensors (``policy.pth``) are
read by SB3 with ``torch.load(weights_only=True)``, which runs no code.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.utils import FloatSchedule

from agents.rl.algorithms import ALGORITHMS, AgentConfig, action_noise_of, policy_kwargs_of
from gi_envs.observation import flat_space
from gi_envs.task import EnvConfig

SERIALIZED = ":serialized:"
# attributes the model rebuilds itself (in `_setup_model` or at the next `learn`): loaded as None
REBUILT_BY_SB3 = ("_last_obs", "_last_episode_starts", "_last_original_obs", "ep_info_buffer", "ep_success_buffer",
                  "rollout_buffer_class", "replay_buffer_class", "weights")
# schedules that `_setup_model` makes from the constructor argument of the same meaning
FROM_ARGUMENT = {"clip_range": "clip_range", "train_freq": "train_freq", "target_entropy": "target_entropy"}
AUTO_ENTROPY = "auto"  # SAC's and TQC's target entropy: minus the action's dimension


def serialized_keys(model_path: Path) -> list[str]:
    """The keys of `model_path`'s ``data`` that SB3 would unpickle, read as JSON only (none where ``data`` is
    missing or no JSON mapping: SB3's own load then refuses the file before it unpickles anything)."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json.loads(archive.read("data"))
    except (KeyError, ValueError, zipfile.BadZipFile, OSError):
        return []
    if not isinstance(data, dict):
        return []
    return [k for k, v in data.items() if isinstance(v, dict) and SERIALIZED in v]


def _argument(config: AgentConfig, name: str) -> Any:
    """The constructor argument `name` of the run: its config's value, else the algorithm's default."""
    if name in config.hyperparams:
        return config.hyperparams[name]
    return inspect.signature(config.algorithm.__init__).parameters[name].default


def constructed_policy_kwargs(config: AgentConfig) -> dict[str, Any]:
    """The policy's keyword arguments as the algorithm's constructor leaves them (DDPG adds ``n_critics: 1``):
    what the saved model holds, made by the constructor itself without an env or a network."""
    entry = ALGORITHMS[config.algo]
    probe = entry.cls(config.policy, env=None, device="cpu", _init_setup_model=False,
                      policy_kwargs=policy_kwargs_of(config))
    return dict(probe.policy_kwargs)


def rebuilt_spaces(env_kwargs: dict[str, Any]) -> tuple[spaces.Space, spaces.Box]:
    """The observation and action spaces an agent trained on these env arguments saw (flat, as SB3VecEnv gives
    a Dict observation to every algorithm)."""
    env = EnvConfig.from_kwargs(**env_kwargs)
    layout = env.observation_layout
    observation = layout.single_space()
    if isinstance(observation, spaces.Dict):
        observation = flat_space(observation)
    return observation, spaces.Box(-1.0, 1.0, (layout.action_dim,), np.float32)


def safe_custom_objects(model_path: Path, config: AgentConfig) -> dict[str, Any]:
    """What to hand `BaseAlgorithm.load` as ``custom_objects`` so that it unpickles nothing; a ValueError naming a
    serialized key this project cannot rebuild, before anything is unpickled."""
    keys = serialized_keys(model_path)
    observation_space, action_space = rebuilt_spaces(config.env_kwargs)
    entry = ALGORITHMS[config.algo]
    known: dict[str, Any] = {
        "policy_class": entry.cls.policy_aliases[config.policy],
        "policy_kwargs": constructed_policy_kwargs(config),
        "observation_space": observation_space,
        "action_space": action_space,
        "lr_schedule": FloatSchedule(_argument(config, "learning_rate")),
        **dict.fromkeys(REBUILT_BY_SB3),
    }
    if "delta_std" in inspect.signature(entry.cls.__init__).parameters:  # ARS
        known["delta_std_schedule"] = FloatSchedule(_argument(config, "delta_std"))
    for key, argument in FROM_ARGUMENT.items():
        if argument in inspect.signature(entry.cls.__init__).parameters:
            known[key] = _argument(config, argument)
    if known.get("target_entropy") == AUTO_ENTROPY:  # what `_setup_model` makes of it, which needs an env
        known["target_entropy"] = -np.prod(action_space.shape).astype(np.float32)
    if config.action_noise:
        known["action_noise"] = action_noise_of(config, action_space)
    elif "action_noise" in keys:
        known["action_noise"] = None
    unknown = sorted(set(keys) - set(known))
    if unknown:
        raise ValueError(f"{model_path} holds pickled entries {unknown} that its config.yaml cannot rebuild; it was "
                         "not written by this project's `train`, and loading it would run code from the file: refused "
                         "(nothing was unpickled)")
    return {k: known[k] for k in keys}
