"""The tuned reference policies: chosen on their own seeds, never on the test split; in every table."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import gi_envs.task
from agents.rl import references
from agents.rl.references import BEST_CONSTANT, SCHEDULE, Schedule, reference_curves, tune_references
from agents.seeds import evaluation_seeds, reference_tuning_seeds
from gi_envs.datasets import Split

TINY = {"episode_length": 5, "steps_per_action": 3}


def test_references_are_tuned_on_their_own_seeds_without_the_test_split(monkeypatch) -> None:
    tuned = tune_references(TINY)
    assert tuned.constant in tuned.constant_returns and len(tuned.schedule_returns) > len(tuned.constant_returns)
    assert max(tuned.constant_returns.values()) == tuned.constant_returns[tuned.constant]
    tuning = set(reference_tuning_seeds(references.TUNING_EPISODES))
    assert all(tuning.isdisjoint(evaluation_seeds(seed, 1000)) for seed in range(10))
    assert tuning.isdisjoint(range(10**6))  # nor any training seed a user passes with --seed

    real_load = gi_envs.task.load_dataset

    def test_labels_destroyed(name: str, data_dir=None):
        data = real_load(name, data_dir=data_dir)
        return dataclasses.replace(data, test=Split(data.test.x, (data.test.y + 1) % data.n_classes))

    monkeypatch.setattr(gi_envs.task, "load_dataset", test_labels_destroyed)
    references._tune.cache_clear()
    again = tune_references(TINY)
    assert again == tuned  # the same choice, to the last return: the test split played no part
    curves, settings = reference_curves(TINY, [7])
    assert curves[BEST_CONSTANT].test_accuracy[0] < 0.2  # ... while the test split itself was indeed destroyed
    assert set(settings) == {BEST_CONSTANT, SCHEDULE}
    references._tune.cache_clear()


@pytest.mark.parametrize("warmup", [0.0, 0.2])
def test_a_schedule_warms_up_then_decays_inside_the_action_box(warmup: float) -> None:
    schedule = Schedule(peak=0.5, warmup=warmup, max_scale=16.0, length=20)
    actions = [schedule.action(t) for t in range(20)]
    peak_at = actions.index(max(actions))
    assert max(actions) == pytest.approx(0.5) and all(-1.0 <= a <= 1.0 for a in actions)
    assert peak_at == (3 if warmup else 0)  # linear warm-up over 20 % of the episode
    assert all(b <= a + 1e-9 for a, b in zip(actions[peak_at:], actions[peak_at + 1:]))  # cosine decay
    assert 16.0 ** actions[-1] == pytest.approx(0.1 * 16.0**0.5)  # ends at a tenth of the peak multiplier
    assert torch.isfinite(torch.tensor(actions)).all()
