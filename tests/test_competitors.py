"""The competitors: other optimizers on exactly the env's MLPs, tuned apart from the evaluation MLPs."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import torch

from agents.errors import MissingDependency
from agents.experiments import competitors as comp
from agents.experiments.competitors import (
    COMPETITORS,
    Competitor,
    Trainer,
    competitor_curves,
    competitor_named,
    competitor_report,
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

    def recording(env_kwargs, make, knob, seeds):
        seen.extend(seeds)
        return real(env_kwargs, make, knob, seeds)

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
