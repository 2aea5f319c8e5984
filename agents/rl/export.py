"""Turn a trained agent's critic into a standalone `ENN`.

On-policy agents (PPO, A2C, TRPO, RecurrentPPO) export their state value V(s): the value head
over the critic's features. Off-policy agents (SAC, TD3, DDPG, TQC, CrossQ) have no V; they
export Q(s, pi(s)), the critic scoring the action the trained actor would take, averaged over
Q-networks (and quantiles for TQC). Why pi(s): V(s) = Q(s, pi(s)) for the policy the critic was
trained to evaluate, so it is the value of these weights under the agent's own training plan.
The alternative Q(s, 0) would score the weights under plain SGD, but the zero action lies off
the actor's action distribution, where a critic is least trained. ARS has no critic.

Weights are copied layer by layer into plain PyTorch modules, so the exported ENN computes
exactly what the agent's critic computes (a test checks it) and loads without SB3.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from torch import nn

from agents.config_files import load_yaml
from agents.enn.network import ACTIVATION_LAYERS, ENN, Affine, LastStepLSTM, enn_metadata
from agents.enn.quality import calibrate
from agents.rl.algorithms import (
    ALGORITHMS,
    Algorithm,
    Critic,
    algorithm_name,
    check_agent_config,
    load_agent_config,
)
from agents.rl.features import WeightImageCNN
from agents.rl.safe_load import safe_custom_objects
from gi_envs.files import first_sentence
from gi_envs.task import EnvConfig

VALUE_CRITICS = tuple(name for name, a in ALGORITHMS.items() if a.critic is Critic.VALUE)  # export V(s)
Q_CRITICS = tuple(name for name, a in ALGORITHMS.items() if a.critic in (Critic.Q, Critic.QUANTILES))  # Q(s, pi(s))
SKIPPED = (nn.Identity, nn.Flatten, nn.Dropout)


def load_agent(model_path: str | Path) -> tuple[BaseAlgorithm, str, dict[str, Any]]:
    """The SB3 model in `model_path`, its algorithm name and env kwargs (from `config.yaml` beside it).

    Nothing pickled in the file is run: every entry SB3 would unpickle is rebuilt from the config instead, and a
    file holding others is refused (`agents.rl.safe_load`)."""
    model_path = Path(model_path)
    config_path = model_path.with_name("config.yaml")
    if not model_path.is_file():
        raise FileNotFoundError(f"no model at {model_path}")
    if not config_path.is_file():
        raise FileNotFoundError(f"no config.yaml beside {model_path}: load_agent reads the algorithm and env from "
                                "it")
    config = load_yaml(config_path.read_text(), str(config_path))
    if not isinstance(config, dict) or "algo" not in config:
        raise ValueError(f"{config_path} is not a run's config (no 'algo' key): load_agent reads the algorithm "
                         "from it")
    algo = algorithm_name(config["algo"])
    saved = {k: v for k, v in config.items() if k not in ("algo", "seed", "task")}
    shipped = {k: v for k, v in load_agent_config(algo).to_dict().items() if k not in ("algo", "task")}
    try:  # the run's own settings over the shipped ones, which fill in what a hand-written config leaves out
        agent_config = check_agent_config(algo, {**shipped, **saved}, source=str(config_path))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{model_path} is not a saved {ALGORITHMS[algo].cls.__name__} model, which "
                         f"{config_path.name} beside it says it is (algo: {algo}): that config cannot rebuild a "
                         f"{ALGORITHMS[algo].cls.__name__} ({first_sentence(error, 200)})") from None
    custom_objects = safe_custom_objects(model_path, agent_config)  # refuses a file with other pickles: none runs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = ALGORITHMS[algo].cls.load(model_path, device="cpu", custom_objects=custom_objects)
        except (AssertionError, AttributeError, KeyError, ValueError, RuntimeError, zipfile.BadZipFile,
                EOFError) as error:
            raise ValueError(f"{model_path} is not a saved {ALGORITHMS[algo].cls.__name__} model, which "
                             f"{config_path.name} beside it says it is (algo: {algo}) ({first_sentence(error, 200)}); "
                             "give the model.zip of a run of `train`, with its own config.yaml") from error
    for warning in caught:
        if "exact_match" in str(warning.message):  # SB3 then loads PPO/A2C with missing weights left random
            raise ValueError(f"{model_path} does not match this version's networks (its parameter names differ); "
                             f"retrain it: {str(warning.message).splitlines()[0]}")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    cls = ALGORITHMS[algo].cls
    if not isinstance(model.policy, tuple(cls.policy_aliases.values())):
        raise ValueError(f"{config_path} says algo: {algo}, but {model_path} holds a {type(model.policy).__name__}, "
                         f"not a {cls.__name__} policy: the model and its config come from different runs")
    return model, algo, dict(config.get("env_kwargs") or {})


def export_calibrated_enn(model_path: str | Path, episodes: int) -> tuple[ENN, str, dict[str, dict[str, float]]]:
    """The calibrated ENN of the agent saved at `model_path`, its algorithm, and its ranking report
    (calibration fitted on `episodes` unseen MLPs, quality measured on as many others)."""
    model, algo, env_kwargs = load_agent(model_path)
    enn = export_enn(model, algo, env_kwargs, source=str(model_path))
    return enn, algo, calibrate(enn, env_kwargs, episodes)


def export_enn(model: BaseAlgorithm, algo: str, env_kwargs: dict[str, Any], source: str = "") -> ENN:
    """The ENN of a trained agent (uncalibrated: scale 1, offset 0)."""
    entry = ALGORITHMS[algorithm_name(algo)]
    if not entry.has_critic:
        raise ValueError(f"{entry.cls.__name__} has no critic to export as an ENN; train an actor-critic algorithm "
                         f"(one of {sorted(VALUE_CRITICS + Q_CRITICS)})")
    observation = EnvConfig.from_kwargs(**env_kwargs).observation
    if tuple(observation) != ("weights",):
        extra = [part for part in observation if part != "weights"]
        where = "besides the weight image" if "weights" in observation else "instead of the weight image"
        raise ValueError(f"this {entry.cls.__name__} critic reads {extra} {where}, so its value is no function "
                         "of an MLP's weights alone and cannot be an ENN (see docs/enn.md); export a critic trained "
                         "with observation=['weights'], the default")
    policy = model.policy
    if entry.critic is Critic.VALUE:
        encoder_src = policy.vf_features_extractor
        head = value_path(policy, entry)
        architecture = {"kind": "value", "encoder": encoder_kwargs(encoder_src), "head": layer_spec(head)}
        sources = {"head": head}
    else:
        actor = policy.actor
        actor_path = [actor.mu] if entry.deterministic_actor else [actor.latent_pi, actor.mu, nn.Tanh()]
        encoder_src = policy.critic.features_extractor
        q_nets = list(policy.critic.q_networks)
        architecture = {
            "kind": "q_of_policy", "encoder": encoder_kwargs(encoder_src),
            "actor_encoder": encoder_kwargs(actor.features_extractor),
            "actor": layer_spec(actor_path), "q_nets": [layer_spec([q]) for q in q_nets],
        }
        sources = {"actor": actor_path, "q_nets": q_nets}

    config = EnvConfig.from_kwargs(**env_kwargs)
    metadata = enn_metadata(architecture, config.mlp, config.image,
                            source={"kind": "critic", "algo": algo, "critic": entry.critic.value, "model": source,
                                    "env_kwargs": env_kwargs})
    enn = ENN(metadata)
    enn.encoder.load_state_dict(encoder_src.encoder.state_dict())
    if entry.critic is Critic.VALUE:
        copy_layers(sources["head"], enn.head)
    else:
        enn.actor_encoder.load_state_dict(policy.actor.features_extractor.encoder.state_dict())
        copy_layers(sources["actor"], enn.actor)
        for src, dst in zip(sources["q_nets"], enn.q_nets):
            copy_layers([src], dst)
    return enn.eval()


def value_path(policy: nn.Module, entry: Algorithm) -> list[nn.Module]:
    """The modules from the critic's features to V(s), in order."""
    path: list[nn.Module] = []
    if entry.recurrent:
        if policy.lstm_critic is not None:
            path.append(policy.lstm_critic)
        elif policy.shared_lstm:
            path.append(policy.lstm_actor)
        else:
            path += [policy.critic, nn.ReLU()]  # RecurrentPPO's non-recurrent critic: Linear then ReLU
    return path + [policy.mlp_extractor.value_net, policy.value_net]


def encoder_kwargs(extractor: nn.Module) -> dict[str, int | str]:
    if not isinstance(extractor, WeightImageCNN):
        raise ValueError(f"the agent's critic reads its input with {type(extractor).__name__}, not the ENN body "
                         "WeightImageCNN; train it with this project's configs")
    first_conv = extractor.encoder.conv[0]
    return {"type": "image", "in_channels": first_conv.in_channels, "features_dim": extractor.features_dim,
            "channels": first_conv.out_channels}


def flat_layers(modules: list[nn.Module]) -> list[nn.Module]:
    """Sequentials opened up, no-op layers dropped."""
    out: list[nn.Module] = []
    for m in modules:
        if isinstance(m, nn.Sequential):
            out += flat_layers(list(m))
        elif not isinstance(m, SKIPPED):
            out.append(m)
    return out


def layer_spec(modules: list[nn.Module]) -> list[dict[str, Any]]:
    """The JSON description of `modules` that `agents.enn.build_layers` rebuilds."""
    activation_names = {cls: name for name, cls in ACTIVATION_LAYERS.items()}
    spec: list[dict[str, Any]] = []
    for m in flat_layers(modules):
        if isinstance(m, nn.Linear):
            spec.append({"type": "linear", "in": m.in_features, "out": m.out_features})
        elif isinstance(m, nn.LSTM):
            spec.append({"type": "lstm", "in": m.input_size, "hidden": m.hidden_size, "layers": m.num_layers})
        elif type(m) in activation_names:
            spec.append({"type": activation_names[type(m)]})
        elif hasattr(m, "ra_mean") and hasattr(m, "ra_var"):  # sb3-contrib's BatchRenorm (CrossQ)
            spec.append({"type": "affine", "dim": int(m.ra_mean.numel())})
        else:
            raise ValueError(f"cannot export layer {type(m).__name__} into an ENN")
    return spec


@torch.no_grad()
def copy_layers(sources: list[nn.Module], target: nn.Sequential) -> None:
    """Copy parameters layer by layer; a batch-renorm layer becomes its evaluation-mode affine map."""
    for src, dst in zip(flat_layers(sources), target):
        if isinstance(dst, nn.Linear):
            dst.load_state_dict(src.state_dict())
        elif isinstance(dst, LastStepLSTM):
            dst.lstm.load_state_dict(src.state_dict())
        elif isinstance(dst, Affine):
            inv_std = 1.0 / torch.sqrt(src.ra_var + src.eps)
            scale = src.scale * inv_std if getattr(src, "affine", True) else inv_std
            bias = src.bias if getattr(src, "affine", True) else torch.zeros_like(inv_std)
            dst.scale.copy_(scale)
            dst.shift.copy_(bias - src.ra_mean * scale)


def sb3_critic_value(model: BaseAlgorithm, algo: str, images: torch.Tensor) -> torch.Tensor:
    """What the agent's own critic says of `images`: the reference an exported ENN must match."""
    policy = model.policy.eval()
    entry = ALGORITHMS[algorithm_name(algo)]
    with torch.no_grad():
        if entry.recurrent:
            layers, _, hidden = policy.lstm_hidden_state_shape
            zeros = torch.zeros(layers, images.shape[0], hidden)
            return policy.predict_values(images, (zeros, zeros), torch.ones(images.shape[0])).squeeze(-1)
        if entry.critic is Critic.VALUE:
            return policy.predict_values(images).squeeze(-1)
        action = policy.actor(images) if entry.deterministic_actor else policy.actor(images, deterministic=True)
        return entry.critic.mean_q(policy.critic(images, action))
