"""Property-based tests (Hypothesis): random arguments, actions and file bytes either work or raise the
documented error, never anything else. Each test prints how many inputs it tried (`pytest -s` shows it)."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gi_envs
from agents import ENN, untrained_supervised_enn
from gi_envs.task import EnvConfig

ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["digits", "mnist", "relu", "he", "mean", "rms", "accuracy", "delta"]),
    st.lists(st.one_of(st.integers(-5, 200), st.floats(-2, 2), st.text(max_size=3)), max_size=4),
    st.tuples(st.integers(-3, 40), st.integers(-3, 40)),
)
FIELDS = [f for f in EnvConfig.__dataclass_fields__] + ["learning_rate", "max_scale_typo"]
GOOD = {"dataset": ["digits", "mnist"], "hidden_sizes": [(8,), (32, 16)], "activation": ["tanh", "gelu"],
        "init": ["he"], "resolution": [0.1, 0.5, 1.0], "action_grid": [(1, 1), (2, 3)], "steps_per_action": [1, 5],
        "batch_size": [8, 64], "lr": [1e-3, 0.5], "perturbation_scale": [0.0, 2.0], "episode_length": [1, 50],
        "reward": ["delta"], "eval_samples": [0, 100], "data_dir": [None, "/nowhere"],
        "image_stats": [("rms",), ("mean", "rms")]}
KWARGS = st.sampled_from(FIELDS).flatmap(
    lambda key: st.tuples(st.just(key), st.one_of(st.sampled_from(GOOD.get(key, [0])), ANY_VALUE)))
# Derandomized and without an example database: the same inputs on every machine, no files left behind.
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, database=None)


def report(what: str, tried: int, minimum: int) -> None:
    print(f"\n{what}: tried {tried} random inputs")
    assert tried >= minimum


def test_env_config_accepts_or_names_the_bad_argument() -> None:
    tried = {"valid": 0, "refused": 0}

    @settings(SETTINGS, max_examples=300)
    @given(st.lists(KWARGS, max_size=5).map(dict))
    def check(kwargs: dict) -> None:
        try:
            config = EnvConfig.from_kwargs(**kwargs)
        except ValueError as error:
            assert any(name in str(error) for name in kwargs), (kwargs, error)  # names what it refused
            tried["refused"] += 1
            return
        assert config.mlp.layer_shapes and config.image.shape(config.mlp)[0] >= 2
        tried["valid"] += 1

    check()
    report(f"EnvConfig ({tried['valid']} valid, {tried['refused']} refused)", sum(tried.values()), 100)


@pytest.fixture(scope="module")
def env() -> gi_envs.GradInstructorEnv:
    env = gi_envs.GradInstructorEnv(steps_per_action=1, episode_length=10**6, eval_samples=64)
    env.reset(seed=0)
    return env


def test_any_action_array_steps_or_raises_value_error(env: gi_envs.GradInstructorEnv) -> None:
    tried = [0]
    size = env.action_space.shape[0]
    values = st.floats(allow_nan=True, allow_infinity=True, width=32)

    @settings(SETTINGS, max_examples=150)
    @given(st.one_of(st.lists(values, min_size=size, max_size=size),
                     st.lists(values, min_size=0, max_size=2 * size + 1)))
    def check(raw: list[float]) -> None:
        tried[0] += 1
        action = np.array(raw, dtype=np.float32)
        if action.shape != env.action_space.shape or np.isnan(action).any():
            with pytest.raises(ValueError, match="action"):
                env.step(action)
            return
        obs, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(obs).all() and 0.0 <= reward <= 1.0 and not math.isnan(info["train_loss"])
        if terminated:
            env.reset(seed=tried[0])

    check()
    report("actions", tried[0], 100)


def test_enn_load_of_any_bytes_or_payload_raises_only_value_error() -> None:
    tried = [0]
    good = untrained_supervised_enn({})
    metadata = json.loads(json.dumps(good.metadata))
    json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.floats(-1, 1),
                                        st.text(max_size=5)),
                              lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                         max_size=3), max_leaves=8)
    damaged_metadata = st.builds(lambda key, value: json.dumps({**metadata, key: value}),
                                 st.sampled_from(["architecture", "target", "image", "calibration"]), json_value)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "enn.pt"

        @settings(SETTINGS, max_examples=150)
        @given(st.one_of(st.binary(max_size=256).map(lambda b: ("bytes", b)),
                         damaged_metadata.map(lambda m: ("metadata", m)),
                         st.text(max_size=40).map(lambda m: ("metadata", m))))
        def check(case: tuple[str, object]) -> None:
            tried[0] += 1
            kind, content = case
            if kind == "bytes":
                path.write_bytes(content)  # type: ignore[arg-type]
            else:
                torch.save({"format": "grad-instructor-enn/1", "metadata": content,
                            "state_dict": good.state_dict()}, path)
            try:
                enn = ENN.load(path)
            except ValueError as error:
                assert str(path) in str(error)
                return
            assert enn(torch.zeros(1, *enn.image_spec.shape(enn.mlp_spec))).shape == (1,)

        check()
    report("ENN.load", tried[0], 100)
