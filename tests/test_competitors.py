"""The competitors: other optimizers on exactly the env's MLPs, tuned apart from the evaluation MLPs."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch

from agents.errors import MissingDependency
from agents.experiments import competitors as comp
from agents.experiments.competitor_tables import competitor_report
from agents.experiments.competitors import (
    COMPETITORS,
    Competitor,
    Trainer,
    competitor_curves,
    competitor_named,
    register_competitor,
    tune_competitor,
)
from agents.rl.rollout import rollout_curves, zero_policy
from agents.seeds import evaluation_seeds, reference_tuning_seeds

RANDOMIZED = {"randomize_regime": True, "episode_length": 4, "steps_per_action": 5}


def test_plain_sgd_in_place_of_a_competitor_gives_the_zero_actions_numbers() -> None:
    seeds = evaluation_seeds(0, 6)
    zero = rollout_curves(RANDOMIZED, zero_policy, seeds)
    sgd, seconds = competitor_curves(RANDOMIZED, competitor_named("SGD, lr multiplier tuned").make, 1.0, seeds)
    # the same initial weights, data share, batch size, weight decay, data order and updates: the same run
    np.testing.assert_allclose(sgd.val_accuracy, zero.val_accuracy, atol=1.5 / 512)
    np.testing.assert_allclose(sgd.test_accuracy, zero.test_accuracy, atol=2.5 / 359)
    np.testing.assert_allclose(sgd.returns, zero.returns, atol=4 * 1.5 / 512)
    assert seconds > 0


@pytest.mark.parametrize("name", [c.name for c in COMPETITORS.values() if c.package])
def test_each_competitor_refuses_a_missing_package_with_the_install_command(name: str, monkeypatch) -> None:
    competitor = competitor_named(name)
    monkeypatch.setitem(sys.modules, competitor.package, None)  # as if it were not installed
    with pytest.raises(MissingDependency, match=re.escape(f"competitor {name!r} needs the {competitor.package!r} "
                                                          "package") + r".*install it: pip install -e "
                                                r"'\.\[(competitors|baselines)\]'"):
        comp.check_competitors([name])


def test_tuning_sees_only_the_tuning_mlps_and_their_validation_accuracy(monkeypatch) -> None:
    seen, real = [], comp.competitor_curves

    def recording(env_kwargs, make, knob, seeds, warmup=None):
        seen.extend(seeds)
        return real(env_kwargs, make, knob, seeds, warmup)

    monkeypatch.setattr(comp, "competitor_curves", recording)
    competitor = register_competitor(Competitor("test AdamW", comp.COMPETITORS["AdamW, lr tuned"].make, "lr", 1e-3,
                                                (1e-3, 3e-3, 1e-2)))
    try:
        tuned = tune_competitor(RANDOMIZED, competitor, episodes=3)
    finally:
        del COMPETITORS["test AdamW"]
    assert set(seen) <= set(reference_tuning_seeds(3))  # never an evaluation MLP
    assert set(seen).isdisjoint(evaluation_seeds(0, 64)) and len(tuned.tried) >= 3
    assert tuned.value == max(tuned.tried, key=tuned.tried.get)  # chosen on mean final validation accuracy


class SignSGD(torch.optim.Optimizer):
    """A user's own optimizer: steps of lr in the gradient's sign."""

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * p.grad.sign())


def test_a_competitor_registered_from_user_code_appears_in_the_table() -> None:
    register_competitor(Competitor("sign SGD (mine)", lambda m, r, k: Trainer(m, SignSGD(m.parameters(), k)), "lr",
                                   1e-3))
    try:
        report = competitor_report("randomized", ["digits"], seeds=[0, 1], episodes=2, tuning=2,
                                   names=["sign SGD (mine)"])
    finally:
        del COMPETITORS["sign SGD (mine)"]
    assert "| sign SGD (mine) |" in report.markdown and "| per-instance oracle" in report.markdown
    row = next(r for r in report.records if r["row"] == "sign SGD (mine)")
    assert 0.1 < row["final_val_accuracy"] <= 1.0 and row["seeds"] == 2 and row["seconds_per_mlp"] > 0
    assert report.settings["digits: sign SGD (mine)"] == "lr 0.001 (untuned)"


def test_a_competitor_registered_from_user_code_appears_in_a_tiny_benchmarks_table(tmp_path, monkeypatch) -> None:
    from agents.experiments import competitor_tables
    from agents.experiments.benchmark import run_benchmark
    from agents.experiments.engine import EngineOptions

    register_competitor(Competitor("sign SGD (mine)", lambda m, r, k: Trainer(m, SignSGD(m.parameters(), k)), "lr",
                                   1e-3))
    kwargs = dict(timesteps=64, env_kwargs={"episode_length": 4, "steps_per_action": 2}, wandb_mode="disabled",
                  eval_episodes=2, competitors=["sign SGD (mine)"], out=tmp_path)
    try:
        result = run_benchmark(["a2c"], [0, 1], options=EngineOptions(progress=False), **kwargs)
        row = next(line for line in result.table.splitlines() if line.startswith("| sign SGD (mine) |"))
        assert row.split(" | ")[1] == "2/2" and "best competitor (sign SGD (mine))" in result.verdict
        mine = result.results[result.results.policy == "sign SGD (mine)"]
        assert list(mine.seed) == [0, 1] and (mine.final_val_accuracy > 0.05).all()
        assert (mine.eval_seconds_per_mlp > 0).all() and set(mine.kind) == {"competitor"}

        calls = []
        monkeypatch.setattr(competitor_tables, "competitor_curves", lambda *a: calls.append(a) or 1 / 0)
        again = run_benchmark(["a2c"], [0, 1], options=EngineOptions(resume=True, progress=False), **kwargs)
        assert not calls and again.table == result.table  # its rows kept, nothing run again
    finally:
        del COMPETITORS["sign SGD (mine)"]


def test_competitors_on_the_command_line_take_keys_and_refuse_unknown_names(capsys) -> None:
    from agents.commands import chosen_competitors
    from train_agents import main

    assert competitor_named("ADAMW-LR-TUNED").name == "AdamW, lr tuned"
    assert chosen_competitors(["none"]) == [] and chosen_competitors(None) is None
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "--algos", "ppo", "--competitors", "adam"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "competitor 'adam' is not known" in err and "adamw-lr-tuned" in err
    with pytest.raises(ValueError, match="give 'none' alone"):
        chosen_competitors(["none", "AdamW, lr tuned"])


def test_updates_to_target_count_the_updates_until_each_mlp_first_reaches_its_own_target() -> None:
    from agents.rl.evaluation import updates_to_target
    from agents.rl.rollout import RolloutCurves

    curves = RolloutCurves(np.array([[0.1, 0.5, 0.9, 0.95], [0.1, 0.2, 0.3, 0.4], [0.1, 0.8, 0.7, 0.9]]),
                           np.zeros(3), np.zeros(3))
    updates, reached = updates_to_target(curves, np.array([0.9, 0.5, 0.8]), steps_per_action=10)
    assert updates.tolist() == [20, 40, 10] and reached.tolist() == [True, False, True]  # never: one step past


def test_the_env_on_schedule_free_adamw_is_the_library_optimizer_on_each_mlp() -> None:
    """The batched Schedule-Free AdamW of the training core (the zero action of ``randomized-schedule-free``) gives
    the curves of `schedulefree.AdamWScheduleFree` run on each MLP alone, at the MLP's own learning rate."""
    env = {**RANDOMIZED, "randomize_regime": "schedule-free-adamw"}
    seeds = evaluation_seeds(0, 6)
    zero = rollout_curves(env, zero_policy, seeds)
    library = Competitor("library Schedule-Free AdamW at the MLP's lr", lambda m, r, k: Trainer(
        m, __import__("schedulefree").AdamWScheduleFree(m.parameters(), lr=r.lr * k, weight_decay=r.weight_decay)),
        "multiplier", 1.0)
    curves, _ = competitor_curves(env, library.make, 1.0, seeds)
    np.testing.assert_allclose(curves.val_accuracy, zero.val_accuracy, atol=1.5 / 512)
    np.testing.assert_allclose(curves.test_accuracy, zero.test_accuracy, atol=2.5 / 359)
    assert zero.final_val_accuracy.mean() > 0.5  # it learns: a real comparison


def test_the_zero_action_is_named_by_the_optimizer_its_mlps_train_with() -> None:
    from agents.rl.references import ZERO, zero_action_label
    from agents.rl.tasks import task_named

    assert zero_action_label(task_named("randomized").env_kwargs) == ZERO == "zero action (plain SGD)"
    assert zero_action_label({"randomize_regime": "wide-lr"}) == ZERO
    assert zero_action_label(task_named("randomized-schedule-free").env_kwargs) == \
        "zero action (schedule-free-adamw as drawn)"
    assert zero_action_label({"randomize_regime": "any-optimizer"}) == "zero action (sgd or momentum or adam as drawn)"
    assert zero_action_label({"optimizer": "adam"}) == "zero action (plain adam)"
