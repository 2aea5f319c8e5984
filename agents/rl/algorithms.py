"""The RL algorithms we train, their YAML configs, and building a model from one.

A config (`configs/<algo>.yaml`, in the spirit of rl-baselines3-zoo) holds the algorithm's
constructor arguments plus a few keys of ours:

- `n_envs`, `n_timesteps`: how many MLPs train side by side, and the env-step budget;
- `policy`: the SB3 policy alias (`MlpPolicy`, or `MlpLstmPolicy` for RecurrentPPO);
- `env_kwargs`: GradInstructor-v0 arguments (the command line's env arguments override them);
- `enn`: the ENN body under every policy (`features_dim`, `channels`; see `agents.rl.features`);
- `action_noise`: `{type: normal | ornstein-uhlenbeck, sigma: 0.1}` for TD3 / DDPG.

Every key is checked against the algorithm's and the policy's signatures before any training,
so a typo fails at once with the list of keys that exist.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import ARS, TQC, TRPO, CrossQ, RecurrentPPO
from stable_baselines3 import A2C, DDPG, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.noise import ActionNoise, NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.vec_env import VecEnv

from agents.config_files import default_config, load_yaml
from agents.rl.features import enn_policy_kwargs
from agents.rl.tasks import task_named
from gi_envs.memory import check_memory
from gi_envs.sb3_vec_env import make_sb3_vec_env
from gi_envs.task import EnvConfig


class Critic(Enum):
    """What an algorithm's critic returns, and so what its exported ENN computes (the value: how an ENN's
    metadata names it)."""

    VALUE = "V(s)"  # one value per observation (policy.predict_values): the ENN is the value
    Q = "Q(s, pi(s)), mean over critics"  # one tensor per Q-network (policy.critic(obs, actions))
    QUANTILES = "Q(s, pi(s)), mean over quantiles and critics"  # critics x quantiles (TQC)

    def mean_q(self, q: Any) -> torch.Tensor:
        """One value per observation from what `policy.critic(obs, actions)` returns."""
        if self is Critic.QUANTILES:  # (N, critics, quantiles)
            return q.mean(dim=(1, 2))
        return torch.stack([qi.mean(dim=1) for qi in q]).mean(dim=0)


@dataclass(frozen=True)
class Algorithm:
    """One algorithm we train, and what the code that trains, evaluates and exports it needs to know.

    :param name: what configs and the command line call it (its shipped config is ``configs/NAME.yaml``).
    :param cls: the Stable-Baselines3 / sb3-contrib class.
    :param on_policy: learns from its current policy's rollouts (PPO family) rather than a replay buffer.
    :param critic: what its critic returns, or None when it has none (ARS).
    :param recurrent: its policy keeps an LSTM state across an episode's steps.
    :param deterministic_actor: its actor's output is the action itself (TD3, DDPG), not a distribution's mean.
    :param policy: the default policy alias.
    """

    name: str
    cls: type[BaseAlgorithm]
    on_policy: bool
    critic: Critic | None
    recurrent: bool = False
    deterministic_actor: bool = False
    policy: str = "MlpPolicy"

    @property
    def has_critic(self) -> bool:
        return self.critic is not None


ALGORITHMS: dict[str, Algorithm] = {a.name: a for a in (
    Algorithm("ppo", PPO, on_policy=True, critic=Critic.VALUE),
    Algorithm("a2c", A2C, on_policy=True, critic=Critic.VALUE),
    Algorithm("sac", SAC, on_policy=False, critic=Critic.Q),
    Algorithm("td3", TD3, on_policy=False, critic=Critic.Q, deterministic_actor=True),
    Algorithm("ddpg", DDPG, on_policy=False, critic=Critic.Q, deterministic_actor=True),
    Algorithm("tqc", TQC, on_policy=False, critic=Critic.QUANTILES),
    Algorithm("trpo", TRPO, on_policy=True, critic=Critic.VALUE),
    Algorithm("crossq", CrossQ, on_policy=False, critic=Critic.Q),
    Algorithm("ars", ARS, on_policy=True, critic=None),  # a plain-MLP policy, no critic and no ENN body
    Algorithm("recurrentppo", RecurrentPPO, on_policy=True, critic=Critic.VALUE, recurrent=True,
              policy="MlpLstmPolicy"),
)}
OUR_KEYS = {"n_envs", "n_timesteps", "policy", "env_kwargs", "enn", "action_noise", "task"}
SET_BY_US = {"self", "policy", "env", "seed", "verbose", "device", "tensorboard_log", "_init_setup_model",
             "action_noise"}
ENN_KEYS = {"features_dim", "channels"}
NOISES = {"normal": NormalActionNoise, "ornstein-uhlenbeck": OrnsteinUhlenbeckActionNoise}


@dataclass
class AgentConfig:
    """One algorithm's settings, validated; `to_dict()` is what gets saved beside the model."""

    algo: str
    policy: str
    n_envs: int
    n_timesteps: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    enn: dict[str, Any] = field(default_factory=dict)
    action_noise: dict[str, Any] | None = None
    hyperparams: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"
    task: str = "default"

    @property
    def algorithm(self) -> type[BaseAlgorithm]:
        return ALGORITHMS[self.algo].cls

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"algo": self.algo, "policy": self.policy, "n_envs": self.n_envs,
                               "n_timesteps": self.n_timesteps, "env_kwargs": self.env_kwargs, "enn": self.enn}
        if self.action_noise:
            out["action_noise"] = self.action_noise
        if self.task != "default":  # runs of the default task read as they did before tasks existed
            out["task"] = self.task
        return {**out, **self.hyperparams}


def algorithm_name(algo: str) -> str:
    """The registry key of `algo` (case-insensitive), or a ValueError naming the known ones."""
    key = algo.lower().replace("-", "").replace("_", "")
    if key not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algo!r}; expected one of {sorted(ALGORITHMS)}")
    return key


def load_agent_config(
    algo: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None, task: str = "default"
) -> AgentConfig:
    """Read and check `configs/<algo>.yaml` (or `path`), apply the task (`agents.rl.tasks`), then `overrides`.

    :param overrides: config keys set from the command line (``n_timesteps``, ``n_envs``,
        ``env_kwargs`` is merged into the file's ``env_kwargs``).
    :param task: its env arguments go under the file's and the overrides'; its agent settings (gamma)
        replace the shipped config's where the algorithm takes them, and fill in a user's own file.
    """
    name = algorithm_name(algo)
    chosen = task_named(task)
    if path is None:
        config = default_config(f"{name}.yaml")
        source = f"the default config {name}.yaml"
    else:
        config = Path(path)
        if config.is_dir():
            raise IsADirectoryError(f"config file {config} is a folder; give a YAML file of {name} settings")
        if not config.is_file():
            raise FileNotFoundError(f"config file {config} does not exist (expected a YAML mapping of {name} settings)")
        source = str(config)
    raw = load_yaml(config.read_text(), source) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{source}: expected a YAML mapping, got {type(raw).__name__}")
    raw.pop("algo", None)
    raw.pop("task", None)
    accepted = set(inspect.signature(ALGORITHMS[name].cls.__init__).parameters)
    for key, value in chosen.agent_settings.items():
        if key in accepted and (path is None or key not in raw):
            raw[key] = value
    overrides = dict(overrides or {})
    if chosen.rollout_envs and "n_steps" in raw and overrides.get("n_envs") is None and path is None:
        transitions = int(raw["n_envs"]) * int(raw["n_steps"])  # each update's size stays what it was
        raw["n_envs"], raw["n_steps"] = chosen.rollout_envs, max(1, transitions // chosen.rollout_envs)
    env_overrides = overrides.pop("env_kwargs", None) or {}
    given = {k: v for k, v in overrides.items() if v is not None}
    raw.update(given)
    raw["env_kwargs"] = {**chosen.env_kwargs, **(raw.get("env_kwargs") or {}), **env_overrides}
    if given or env_overrides:  # an error may come from what the caller set, not from the file: say both
        shown = ", ".join(f"{k}={v!r}" for k, v in {**given, **({"env_kwargs": env_overrides} if env_overrides
                                                                else {})}.items())
        source = f"{source} with {shown} set over it"
    config = check_agent_config(name, raw, source=source)
    config.task = chosen.name
    return config


def config_keys(name: str) -> set[str]:
    """The keys a config of algorithm `name` may hold: its constructor's arguments that we do not set, and ours."""
    return (set(inspect.signature(ALGORITHMS[name].cls.__init__).parameters) - SET_BY_US) | OUR_KEYS


def check_agent_config(name: str, raw: dict[str, Any], source: str = "<dict>") -> AgentConfig:
    """Validate a config mapping for algorithm `name`; every error names `source` and the key."""
    entry = ALGORITHMS[name]
    cls = entry.cls
    allowed = config_keys(name)
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; expected some of {sorted(allowed)}")
    hyper = {k: v for k, v in raw.items() if k not in OUR_KEYS}
    policy = raw.get("policy", entry.policy)
    if policy not in cls.policy_aliases:
        raise ValueError(f"{source}: policy={policy!r} is not one of {cls.__name__}'s {sorted(cls.policy_aliases)}")
    check_value_types(cls, hyper, source)
    policy_kwargs = hyper.get("policy_kwargs") or {}
    check_net_arch(policy_kwargs.get("net_arch"), source)
    policy_params = set(inspect.signature(cls.policy_aliases[policy].__init__).parameters)
    bad = sorted(set(policy_kwargs) - policy_params)
    if bad:
        raise ValueError(f"{source}: unknown policy_kwargs {bad} for {cls.policy_aliases[policy].__name__}")
    enn = dict(raw.get("enn") or {})
    if set(enn) - ENN_KEYS:
        raise ValueError(f"{source}: unknown enn key(s) {sorted(set(enn) - ENN_KEYS)}; expected some of "
                         f"{sorted(ENN_KEYS)}")
    noise = raw.get("action_noise")
    if noise is not None and (not isinstance(noise, dict) or noise.get("type") not in NOISES or entry.on_policy):
        raise ValueError(f"{source}: action_noise={noise!r} must be {{type: one of {sorted(NOISES)}, sigma: float}} "
                         f"on an off-policy algorithm")
    for key, meaning in (("n_envs", "how many MLPs train side by side"), ("n_timesteps", "the env-step budget")):
        if key not in raw:
            raise ValueError(f"{source}: sets no {key} ({meaning}); expected a positive integer")
        value = raw[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{source}: {key}={value!r} must be a positive integer")
    env_kwargs = dict(raw.get("env_kwargs") or {})
    EnvConfig.from_kwargs(**env_kwargs)  # raises ValueError naming a bad env argument
    config = AgentConfig(name, policy, raw["n_envs"], raw["n_timesteps"], env_kwargs, enn, noise, hyper, source)
    venv = make_sb3_vec_env(config.n_envs, 0, flatten_observation=True, **env_kwargs)
    check_buffer_memory(config, venv)
    build_model(config, venv, seed=0, dry_run=True)  # bad values fail here
    return config


def check_buffer_memory(config: AgentConfig, venv: VecEnv) -> None:
    """Refuse a rollout or replay buffer the machine cannot hold, before SB3 allocates it."""
    defaults = inspect.signature(config.algorithm.__init__).parameters
    setting = {k: config.hyperparams.get(k, defaults[k].default if k in defaults else None)
               for k in ("n_steps", "buffer_size")}
    per_transition = (2 * int(np.prod(venv.observation_space.shape)) + int(np.prod(venv.action_space.shape)) + 4) * 4
    if isinstance(setting["buffer_size"], int):  # off-policy: a replay buffer of observations and next ones
        transitions, what = setting["buffer_size"], f"the replay buffer of buffer_size={setting['buffer_size']:,}"
    elif isinstance(setting["n_steps"], int):
        transitions = setting["n_steps"] * config.n_envs
        what = f"the rollout buffer of n_steps={setting['n_steps']:,} x n_envs={config.n_envs:,}"
    else:
        return
    check_memory(transitions * per_transition, f"{config.source}: {what} transitions")


def check_value_types(cls: type[BaseAlgorithm], hyper: dict[str, Any], source: str) -> None:
    """Refuse a value whose type cannot be what the algorithm's default is: text or a bool for a number,
    a fraction for a count, anything but true / false for a switch (SB3 would fail later, and vaguely)."""
    parameters = inspect.signature(cls.__init__).parameters
    for key, value in hyper.items():
        default = parameters[key].default if key in parameters else None
        if key == "train_freq" and isinstance(value, list):  # (frequency, "step" | "episode") is allowed too
            continue
        if isinstance(default, bool):
            wrong = not isinstance(value, bool)
            expected = "true or false"
        elif isinstance(default, int | float):
            number = isinstance(value, int | float) and not isinstance(value, bool)
            wrong = not number or (isinstance(default, int) and not float(value).is_integer())
            expected = "an integer" if isinstance(default, int) else "a number"
        else:
            continue
        if wrong:
            raise ValueError(f"{source}: {key}={value!r} must be {expected} ({cls.__name__}'s default is {default!r})")


def check_net_arch(net_arch: Any, source: str) -> None:
    """`policy_kwargs.net_arch`: a list of layer widths, or ``{pi: [...], vf: [...]}`` (``qf`` for Q-networks);
    every width a positive integer."""
    if net_arch is None:
        return
    lists = net_arch.values() if isinstance(net_arch, dict) else [net_arch]
    for widths in lists:
        if not isinstance(widths, list) or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0
                                                    for w in widths):
            raise ValueError(f"{source}: policy_kwargs.net_arch={net_arch!r} must be a list of positive layer widths, "
                             "or a mapping of such lists (pi, vf, qf)")


def policy_kwargs_of(config: AgentConfig) -> dict[str, Any]:
    """The policy's keyword arguments: the config's, with the ENN body under every policy that has a critic
    (ARS's policy is a plain MLP and has no critic to give an ENN body)."""
    policy_kwargs = dict(config.hyperparams.get("policy_kwargs") or {})
    if ALGORITHMS[config.algo].has_critic:
        layout = EnvConfig.from_kwargs(**config.env_kwargs).observation_layout
        policy_kwargs = enn_policy_kwargs(**config.enn, layout=layout, **policy_kwargs)
    return policy_kwargs


def action_noise_of(config: AgentConfig, action_space: gym.spaces.Box) -> ActionNoise:
    """The exploration noise `config.action_noise` describes, for actions of `action_space`."""
    assert config.action_noise
    n_actions = int(np.prod(action_space.shape))
    sigma = float(config.action_noise.get("sigma", 0.1))
    return NOISES[config.action_noise["type"]](np.zeros(n_actions), sigma * np.ones(n_actions))


def build_model(config: AgentConfig, venv: VecEnv, seed: int, dry_run: bool = False) -> BaseAlgorithm:
    """The SB3 model of `config` on `venv`, with the ENN body under its policy (ARS has none).

    :param dry_run: only check that the config builds (a tiny replay buffer, nothing trained).
    """
    hyper = dict(config.hyperparams)
    if dry_run and "buffer_size" in hyper:
        hyper["buffer_size"] = 16 * config.n_envs
    hyper.pop("policy_kwargs", None)
    policy_kwargs = policy_kwargs_of(config)
    if config.action_noise:
        hyper["action_noise"] = action_noise_of(config, venv.action_space)
    try:
        return config.algorithm(config.policy, venv, seed=seed, device="cpu", policy_kwargs=policy_kwargs, **hyper)
    except (TypeError, ValueError, AssertionError, RuntimeError) as err:
        detail = " ".join(str(err).split())[:200]
        raise ValueError(f"{config.source}: {config.algorithm.__name__} rejected the config: {detail}") from err
