"""Every family of seeds the project draws MLPs from, named once, so that no two jobs share an MLP.

Training runs reset their envs from the user's seed; everything below lives far from small
integers, and each family far from the others, so an MLP used to train, tune, calibrate or judge
something is never reused for another of these jobs.

| family              | seeds                              | used by                                         |
|---------------------|------------------------------------|-------------------------------------------------|
| evaluation          | 1,000,000 + 1000 * train_seed + k  | an agent's final evaluation (`agents.rl`)       |
| calibration         | 2,000,000 + k                      | fitting an exported ENN's calibration           |
| quality             | 3,000,000 + k                      | reporting an ENN's ranking quality              |
| supervised episodes | 4,000,000 + 100,000 * seed + k     | the snapshots a supervised ENN is fitted on     |
| tuning              | 1000, 1001, 1002                   | choosing guidance weights and learning rates    |
| reference tuning    | 5,000,000 + k                      | choosing the best constant and the schedule     |
| zoo runs            | 6,000,000 + 1,000,000 * seed + k   | run k of the zoo made with `seed`               |

Two streams derive from an MLP's seed rather than naming seeds of their own: its regime under a
regime distribution (`gi_envs.regime.REGIME_STREAM`: a NumPy generator seeded with (seed, stream)),
and everything `gi_envs.training.Training.reset` draws from a torch generator seeded with the seed
itself (weights, data share, data order).
"""

from __future__ import annotations

from gi_envs.regime import REGIME_STREAM as REGIME_STREAM  # named here with the families, defined where drawn

EVALUATION_BASE = 1_000_000
CALIBRATION_BASE = 2_000_000
QUALITY_BASE = 3_000_000
SUPERVISED_EPISODES_BASE = 4_000_000
TUNING_SEEDS = (1000, 1001, 1002)
REFERENCE_TUNING_BASE = 5_000_000
ZOO_BASE = 6_000_000
ZOO_SEED_STRIDE = 1_000_000  # a zoo holds fewer runs than this


def evaluation_seeds(train_seed: int, episodes: int) -> list[int]:
    """The unseen MLPs an agent trained with `train_seed` is judged on: disjoint per training seed."""
    return [EVALUATION_BASE + 1000 * int(train_seed) + k for k in range(episodes)]


def calibration_seeds(episodes: int) -> list[int]:
    """The MLPs an exported ENN's affine calibration is fitted on."""
    return [CALIBRATION_BASE + k for k in range(episodes)]


def quality_seeds(episodes: int) -> list[int]:
    """The MLPs an ENN's ranking quality is reported on (never used for fitting or calibration)."""
    return [QUALITY_BASE + k for k in range(episodes)]


def supervised_episode_seeds(seed: int, episodes: int) -> list[int]:
    """The MLPs whose snapshots a supervised ENN fitted with `seed` learns from."""
    return [SUPERVISED_EPISODES_BASE + 100_000 * int(seed) + k for k in range(episodes)]


def reference_tuning_seeds(episodes: int) -> list[int]:
    """The MLPs on which the tuned reference policies (best constant, schedule) choose their setting."""
    return [REFERENCE_TUNING_BASE + k for k in range(episodes)]


def zoo_run_seeds(zoo_seed: int, runs: int) -> list[int]:
    """The seeds of the runs of the zoo made with `zoo_seed` (each run's MLP, regime and data order)."""
    if runs > ZOO_SEED_STRIDE:
        raise ValueError(f"runs={runs} is not allowed; a zoo holds at most {ZOO_SEED_STRIDE} runs")
    return [ZOO_BASE + ZOO_SEED_STRIDE * int(zoo_seed) + k for k in range(runs)]
