"""The ENN: exported critics compute what the agents' critics compute, save/load without SB3,
calibration and ranking reports, shape checks, and guidance gradients reaching MLP weights."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from stable_baselines3 import PPO
from torch import nn

from agents import untrained_supervised_enn
from agents.enn import ENN
from agents.enn.guidance import ENNGuidance
from agents.enn.quality import collect_snapshots, fit_calibration, ranking_quality
from agents.rl.algorithms import load_agent_config
from agents.rl.export import Q_CRITICS, VALUE_CRITICS, export_enn, load_agent, sb3_critic_value
from agents.rl.training import train_agent
from gi_envs import BatchedMLP, load_dataset
from tests.conftest import REPO, cli_error, run_without_sb3
from tests.floats import assert_float32_close

TINY_ENV = {"episode_length": 4, "steps_per_action": 2}


def trained(algo: str, out: Path, timesteps: int = 300):
    config = load_agent_config(algo, overrides={"n_timesteps": timesteps, "env_kwargs": TINY_ENV})
    if "learning_starts" in config.hyperparams:
        config.hyperparams["learning_starts"] = 64  # so the critic has trained a little
    return train_agent(config, seed=1, out=out, wandb_mode="disabled", eval_episodes=1, progress_bar=False).model


@pytest.fixture(scope="module")
def ppo_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ppo")
    trained("ppo", out, timesteps=512)
    return out


@pytest.mark.parametrize("algo", VALUE_CRITICS + Q_CRITICS)
def test_exported_enn_computes_exactly_what_the_critic_computes(algo: str, tmp_path: Path) -> None:
    model = trained(algo, tmp_path)
    enn = export_enn(model, algo, TINY_ENV)
    images = collect_snapshots(TINY_ENV, [7, 8]).images
    with torch.no_grad():
        mine = enn.raw(images)
    assert_float32_close(mine, sb3_critic_value(model, algo, images), atol=1e-5, rtol=1e-5)
    assert enn.metadata["source"]["critic"].startswith("V(s)" if algo in VALUE_CRITICS else "Q(s, pi(s))")


def test_ars_has_no_critic_to_export(tmp_path: Path) -> None:
    model = trained("ars", tmp_path, timesteps=100)
    with pytest.raises(ValueError, match="ARS has no critic"):
        export_enn(model, "ars", TINY_ENV)


def test_save_load_round_trip_needs_no_sb3(ppo_run: Path, tmp_path: Path) -> None:
    model, algo, env_kwargs = load_agent(ppo_run / "model.zip")
    enn = export_enn(model, algo, env_kwargs)
    enn.set_calibration(0.5, 0.25)
    enn.save(tmp_path / "enn.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["enn.pt"]  # no temporary file left behind
    images = collect_snapshots(TINY_ENV, [3]).images
    expected = enn(images).detach().numpy()
    np.save(tmp_path / "images.npy", images.numpy())
    lines = run_without_sb3(
        "import numpy, torch\nfrom agents.enn import ENN\n"
        f"enn = ENN.load({str(tmp_path / 'enn.pt')!r})\n"
        f"images = torch.from_numpy(numpy.load({str(tmp_path / 'images.npy')!r}))\n"
        "print(repr(enn(images).tolist())); print(enn.metadata['calibration'])\n"
    )
    assert_float32_close(eval(lines[0]), expected, atol=1e-6)
    assert lines[1] == "{'scale': 0.5, 'offset': 0.25}"
    loaded = ENN.load(tmp_path / "enn.pt")
    assert loaded.layer_shapes == [(32, 64), (10, 32)] and loaded.metadata["target"]["dataset"] == "digits"


def test_loading_something_else_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ENN file"):
        ENN.load(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not an ENN file"):
        ENN.load(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(ValueError, match="is not an ENN file"):
        ENN.load(tmp_path / "text.pt")


def test_guidance_gradients_reach_a_sequentials_weights(ppo_run: Path) -> None:
    model, algo, env_kwargs = load_agent(ppo_run / "model.zip")
    guidance = ENNGuidance(export_enn(model, algo, env_kwargs), weight=0.5, record_every=1)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    data = load_dataset("digits")
    x, y = data.train.x[:32], data.train.y[:32]

    plain = torch.autograd.grad(F.cross_entropy(mlp(x), y), [mlp[0].weight, mlp[2].weight])
    term = guidance(mlp)
    loss = F.cross_entropy(mlp(x), y) + term
    loss.backward()
    guidance.after_backward(mlp)
    for layer, g_plain in zip((mlp[0], mlp[2]), plain):
        difference = layer.weight.grad - g_plain
        assert difference.abs().max() > 0  # the ENN moved every weight matrix's gradient
    record = guidance.history[-1]
    assert record["ratio"] > 0 and record["task_norm"] == pytest.approx(
        float(torch.sqrt(sum(g.pow(2).sum() for g in plain))), rel=1e-4)


def test_guidance_checks_shapes_and_drives_the_batched_trainer(ppo_run: Path, tmp_path: Path) -> None:
    model, algo, env_kwargs = load_agent(ppo_run / "model.zip")
    guidance = ENNGuidance(export_enn(model, algo, env_kwargs), weight=1.0, schedule="linear-decay", total_steps=4)
    with pytest.raises(ValueError, match=r"made for an MLP with weight shapes \[\(32, 64\), \(10, 32\)\].*\(16, 64\)"):
        guidance(nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10)))

    mlp = BatchedMLP((64, 32, 10), n_models=3)
    for i in range(3):
        mlp.initialize(i, torch.Generator().manual_seed(i))
    grads = guidance.weight_gradients(mlp.weights)
    assert [tuple(g.shape) for g in grads] == [(3, 32, 64), (3, 10, 32)]
    assert all(g.abs().sum(dim=(1, 2)).min() > 0 for g in grads)  # every model gets its own push
    assert guidance.current_weight() == pytest.approx(0.75)  # one call into a 4-step linear decay
    for step in range(3):
        data = load_dataset("digits")
        idx = torch.arange(32).expand(3, -1) + 32 * step
        _, task, bias = mlp.loss_and_gradients(data.train.x[idx], data.train.y[idx])
        extra = guidance.weight_gradients(mlp.weights)
        guidance.record(extra, task)
        with torch.no_grad():
            for w, t, e in zip(mlp.weights, task, extra):
                w.sub_(t + e, alpha=0.05)
    paths = guidance.write_history(tmp_path / "ratio")
    assert all(p.is_file() for p in paths) and len(guidance.history) == 3


def test_calibration_and_ranking_metrics_on_known_data() -> None:
    raw = np.array([0.0, 1.0, 2.0, 3.0])
    assert fit_calibration(raw, 0.2 * raw + 0.1) == pytest.approx((0.2, 0.1))
    perfect = ranking_quality(np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.6, 0.7]))
    assert perfect["kendall_tau"] == pytest.approx(1.0) and perfect["spearman_rho"] == pytest.approx(1.0)
    assert perfect["mae"] == pytest.approx((0.1 + 0.1 + 0.2) / 3)
    snaps = collect_snapshots(TINY_ENV, [11, 12, 13, 14])
    assert snaps.images.shape == (4 * 5, 4, 5, 10)  # the default image: mean and rms channels
    assert sorted(set(snaps.steps.tolist())) == [0, 1, 2, 3, 4]
    late = snaps.accuracy[snaps.steps == 4].mean()
    assert late > snaps.accuracy[snaps.steps == 0].mean() + 0.1  # the snapshots really span training


def test_export_command_calibrates_and_saves(ppo_run: Path, tmp_path: Path, capsys) -> None:
    from train_agents import main

    main(["export", "--model", str(ppo_run / "model.zip"), "--out", str(tmp_path / "enn.pt"), "--episodes", "4"])
    printed = capsys.readouterr().out
    assert "Kendall tau" in printed and "| late |" in printed
    enn = ENN.load(tmp_path / "enn.pt")
    quality = enn.metadata["quality"]
    assert set(quality) >= {"all", "early", "late"} and -1 <= quality["all"]["kendall_tau"] <= 1
    assert enn.metadata["calibration"]["scale"] != 1.0


def test_supervised_enn_learns_to_rank_snapshots_it_never_saw(tmp_path: Path) -> None:
    from agents.enn.fit import FitSettings
    from agents.enn.quality import quality_by_stage
    from agents.enn.supervised import episode_snapshots, fit_supervised_enn
    from agents.seeds import quality_seeds

    snapshots = episode_snapshots({}, env_steps=800)  # 40 whole default episodes of 20 steps
    assert len(np.unique(snapshots.episodes)) == 40 and len(snapshots.accuracy) == 40 * 21
    enn = fit_supervised_enn({}, snapshots, FitSettings(epochs=30))
    held_out = collect_snapshots({}, quality_seeds(16))
    quality = quality_by_stage(enn, held_out)
    assert quality["all"]["kendall_tau"] > 0.3  # a real, if rough, ranking of unseen MLPs
    enn.save(tmp_path / "sup.pt")
    assert ENN.load(tmp_path / "sup.pt").metadata["source"]["kind"] == "supervised"


def test_critic_against_supervised_comparison_prints_its_table(ppo_run: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "bench/enn_compare.py", "--models", str(ppo_run / "model.zip"),
                           "--episodes", "4", "--epochs", "2", "--out", str(tmp_path),
                           "--save", str(tmp_path / "enns")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "| ppo critic, V(s) | 512 |" in done.stdout and "| supervised ENN (same env steps) | 512 |" in done.stdout
    assert (tmp_path / "enn_compare.md").is_file()
    assert ENN.load(tmp_path / "enns" / "ppo_critic_0.pt").encoder_type == "image"
    assert ENN.load(tmp_path / "enns" / "supervised_512_0.pt").metadata["source"]["kind"] == "supervised"


def test_enn_reads_the_image_stats_it_was_made_for(tmp_path: Path) -> None:
    from agents.enn.supervised import untrained_supervised_enn

    enn = untrained_supervised_enn({"image_stats": ("mean", "rms")})
    assert enn.metadata["image"]["shape"] == [4, 5, 10]
    mlp = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    image = enn.image_of([mlp[0].weight, mlp[2].weight])
    assert image.shape == (1, 4, 5, 10) and enn(image).shape == (1,)
    enn.save(tmp_path / "e.pt")
    assert ENN.load(tmp_path / "e.pt").metadata["image"]["stats"] == ["mean", "rms"]


class TwoLayerNet(torch.nn.Module):
    """A user's own MLP class: Linear layers as attributes, the activation in forward."""

    def __init__(self, hidden: int = 32):
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(64, hidden), torch.nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.nn.functional.relu(self.fc1(x)))


def test_enn_predict_takes_modules_state_dicts_and_a_batched_mlp_and_rejects_wrong_shapes() -> None:
    from agents.enn.supervised import untrained_supervised_enn
    from gi_envs import BatchedMLP

    enn = untrained_supervised_enn({})
    mlp = BatchedMLP((64, 32, 10), 3)
    for i in range(3):
        mlp.initialize(i, torch.Generator().manual_seed(i))
    from_batched = enn.predict(mlp)
    sequential, net = mlp.to_sequential(0), TwoLayerNet()
    net.load_state_dict({"fc1.weight": mlp.weights[0][1], "fc1.bias": mlp.biases[0][1],
                         "fc2.weight": mlp.weights[1][1], "fc2.bias": mlp.biases[1][1]})
    from_list = enn.predict([sequential, net, mlp.to_sequential(2).state_dict()])
    assert_float32_close(from_list, from_batched, rtol=1e-5, atol=1e-6)
    assert from_list.shape == (3,) and from_list.dtype == np.float64
    with pytest.raises(ValueError, match=r"model 1 of the list\) was made for an MLP with weight shapes"):
        enn.predict([net, TwoLayerNet(hidden=8)])
    with pytest.raises(TypeError, match="wrap a single one"):
        enn.predict(net)


def test_guidance_works_on_any_module_and_leaves_the_callers_enn_as_it_was() -> None:
    from agents.enn.supervised import untrained_supervised_enn

    enn = untrained_supervised_enn({}).train()
    before = {k: v.clone() for k, v in enn.state_dict().items()}
    guidance = ENNGuidance(enn, weight=0.1, record_every=1)
    net = TwoLayerNet()
    loss = torch.nn.functional.cross_entropy(net(torch.randn(8, 64)), torch.randint(0, 10, (8,))) + guidance(net)
    loss.backward()
    guidance.after_backward(net)
    assert net.fc1.weight.grad.abs().sum() > 0 and len(guidance.history) == 1
    assert enn.training and all(p.requires_grad and p.grad is None for p in enn.parameters())
    assert all(torch.equal(v, enn.state_dict()[k]) for k, v in before.items())


class _RunsACommand:
    """What a crafted pickle does: calling it on unpickling runs a shell command."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _craft(model_zip: Path, key: str, marker: Path) -> None:
    """Put a pickle that touches `marker` under `key` of the zip's data, as SB3 stores a serialized entry."""
    with zipfile.ZipFile(model_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    data = json.loads(entries["data"])
    payload = base64.b64encode(cloudpickle.dumps(_RunsACommand(f"touch {marker}"))).decode()
    data[key] = {":type:": "<class 'gymnasium.spaces.box.Box'>", ":serialized:": payload}
    entries["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(model_zip, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)


@pytest.mark.parametrize("key", ["observation_space", "lr_schedule", "something_else"])
def test_a_crafted_model_zip_runs_nothing(ppo_run: Path, tmp_path: Path, key: str, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(ppo_run, run)
    marker = tmp_path / "ran-code"
    _craft(run / "model.zip", key, marker)
    if key == "something_else":  # an entry the config cannot rebuild: refused before anything is unpickled
        with pytest.raises(ValueError, match=r"holds pickled entries \['something_else'\] that its config.yaml "
                                             r"cannot rebuild.*nothing was unpickled"):
            load_agent(run / "model.zip")
        assert "nothing was unpickled" in cli_error(["export", "--model", str(run / "model.zip"), "--out",
                                                     str(tmp_path / "enn.pt")], capsys)
    else:  # a known entry is rebuilt from the config: the file's pickle is never read
        model, algo, _ = load_agent(run / "model.zip")
        assert algo == "ppo" and model.observation_space.shape == (4, 5, 10)
    assert not marker.exists()
    try:  # the crafted payload is real: SB3's own loader, with nothing supplied, runs it
        PPO.load(run / "model.zip", device="cpu")
    except Exception:  # only whether it ran matters here
        pass
    assert marker.exists()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_guidance_reads_a_float64_or_bfloat16_model_in_float32(dtype: torch.dtype) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).to(dtype)
    term = ENNGuidance(untrained_supervised_enn({}), weight=1.0)(model)
    term.backward()
    assert term.dtype == torch.float32 and model[0].weight.grad.dtype == dtype
    assert model[0].weight.grad.abs().sum() > 0


def test_guidance_refuses_a_negative_weight_and_numpy_state_dicts_are_named() -> None:
    with pytest.raises(ValueError, match=r"weight=-1 must be a finite number \(0 turns guidance off\), and not neg"):
        ENNGuidance(untrained_supervised_enn({}), weight=-1)
    state = {k: v.numpy() for k, v in torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                                           torch.nn.Linear(32, 10)).state_dict().items()}
    with pytest.raises(ValueError, match=r"a state_dict of NumPy arrays; the ENN reads torch tensors"):
        untrained_supervised_enn({}).predict([state])


def test_an_undefined_rank_correlation_is_nan_not_zero() -> None:
    from agents.enn.quality import ranking_quality
    from agents.report import correlation_text

    tied = ranking_quality(np.array([0.5, 0.5]), np.array([0.2, 0.9]))
    assert np.isnan(tied["kendall_tau"]) and correlation_text(tied["kendall_tau"]) == "undefined"
    assert np.isnan(ranking_quality(np.array([0.5]), np.array([0.2]))["kendall_tau"])
