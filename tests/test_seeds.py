"""The seed families never meet, for any job seed a command accepts; small seeds keep their published values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents import seeds
from agents.seeds import SEED_FAMILIES, SEED_LIMIT, TUNING_SEEDS, SeedFamily


def _overlap(a: range, b: range) -> bool:
    return len(a) > 0 and len(b) > 0 and a.start < b.stop and b.start < a.stop


def _draw(family: SeedFamily, data: st.DataObject, label: str) -> tuple[int, range]:
    job_seed = data.draw(st.integers(0, family.job_seeds - 1), label=f"{label} job seed")
    most = family.stride if family.low_seeds is None else min(family.stride, seeds.HIGH_STRIDE)
    count = data.draw(st.integers(1, most), label=f"{label} count")
    return job_seed, family.seeds(job_seed, count)


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(SEED_FAMILIES), st.sampled_from(SEED_FAMILIES), st.data())
def test_no_two_jobs_share_an_mlp_over_the_whole_accepted_range(first: SeedFamily, second: SeedFamily,
                                                               data: st.DataObject) -> None:
    seed_a, a = _draw(first, data, "first")
    seed_b, b = _draw(second, data, "second")
    if first is second and seed_a == seed_b:
        return  # one job: its seeds are its own
    assert not _overlap(a, b), (first.name, seed_a, a, second.name, seed_b, b)
    assert 0 <= a.start and a.stop <= 2**63  # what torch's and numpy's generators take
    assert not any(_overlap(a, range(t, t + 1)) for t in TUNING_SEEDS)


@given(st.sampled_from([f for f in SEED_FAMILIES if f.job_seeds > 1]), st.integers(SEED_LIMIT, 2**64))
def test_a_seed_past_the_accepted_range_is_refused_naming_it(family: SeedFamily, seed: int) -> None:
    with pytest.raises(ValueError, match=rf"seed={seed} is not allowed for the {family.name} seeds; expected an "
                                         rf"integer in \[0, {family.job_seeds - 1}\]"):
        family.seeds(seed, 1)


def test_seeds_below_1000_keep_the_values_every_published_table_used() -> None:
    assert seeds.evaluation_seeds(0, 3) == [1_000_000, 1_000_001, 1_000_002]
    assert seeds.evaluation_seeds(999, 1) == [1_999_000]
    assert seeds.calibration_seeds(2) == [2_000_000, 2_000_001]
    assert seeds.quality_seeds(1) == [3_000_000]
    assert seeds.supervised_episode_seeds(3, 1) == [4_300_000]
    assert seeds.reference_tuning_seeds(1) == [5_000_000]
    assert seeds.zoo_run_seeds(2, 1) == [8_000_000]


def test_the_two_collisions_of_the_old_layout_are_gone() -> None:
    tuning = set(seeds.reference_tuning_seeds(64))
    assert tuning.isdisjoint(seeds.evaluation_seeds(4000, 64))  # was 5,000,000 + k: the best constant's own MLPs
    assert set(seeds.calibration_seeds(64)).isdisjoint(seeds.evaluation_seeds(1000, 64))  # was 2,000,000 + k


def test_too_many_mlps_for_one_job_are_refused() -> None:
    with pytest.raises(ValueError, match=r"1001 evaluation MLPs are not allowed; expected an integer in \[0, 1000\]"):
        seeds.evaluation_seeds(0, 1001)


def test_guide_seeds_stay_below_the_tuning_seeds() -> None:
    assert seeds.guide_seeds([0, 999]) == [0, 999]
    with pytest.raises(ValueError, match=r"seeds=\[1000\] is not allowed; expected integers in \[0, 999\]"):
        seeds.guide_seeds([3, 1000])
