"""Every family of seeds the project draws MLPs from, named once, so that no two jobs share an MLP.

Training runs reset their envs from the user's seed; everything below lives far from small
integers, and each family far from the others, so an MLP used to train, tune, calibrate or judge
something is never reused for another of these jobs.

| family              | seeds (job seed s, k-th MLP)       | used by                                         |
|---------------------|------------------------------------|-------------------------------------------------|
| guide               | the user's seeds, 0 to 999         | the guide's MLPs (a row's seeds are its MLPs')  |
| tuning              | 1000, 1001, 1002                   | choosing guidance weights and learning rates    |
| evaluation          | 1,000,000 + 1000 * s + k           | an agent's final evaluation (`agents.rl`)       |
| calibration         | 2,000,000 + k                      | fitting an exported ENN's calibration           |
| quality             | 3,000,000 + k                      | reporting an ENN's ranking quality              |
| supervised episodes | 4,000,000 + 100,000 * s + k        | the snapshots a supervised ENN is fitted on     |
| reference tuning    | 5,000,000 + k                      | choosing the best constant and the schedule     |
| zoo runs            | 6,000,000 + 1,000,000 * s + k      | run k of the zoo made with `s`                  |
| shape-family zoos   | high layout only: 2**16 * m + k    | run k of member (shape) m of family `s`         |
| task-family zoos    | high layout only: k                | run k of the task-family zoo made with `s`      |

That is the *low layout*, which every published table used. It holds for job seeds below a family's
`SeedFamily.low_seeds` (1000 for evaluation, 10 for supervised episodes, every seed for the zoo). A larger
job seed moves its family into a block of its own in the *high layout*, far above every low seed:
``(block + 1) * 2**56 + 2**22 * s + k``. So, for every job seed a command accepts (0 to 2**32 - 1), no
two families meet, and no two job seeds of one family meet (`tests/test_seeds.py` proves it with
Hypothesis over the whole range).

Two streams derive from an MLP's seed rather than naming seeds of their own: its regime under a
regime distribution (`gi_envs.regime.REGIME_STREAM`: a NumPy generator seeded with (seed, stream)),
and everything `gi_envs.training.Training.reset` draws from a torch generator seeded with the seed
itself (weights, data share, data order).
"""

from __future__ import annotations

from dataclasses import dataclass

from gi_envs.regime import REGIME_STREAM as REGIME_STREAM  # named here with the families, defined where drawn

SEED_LIMIT = 2**32  # every job seed a command accepts lies in [0, SEED_LIMIT): numpy's and SB3's seeds are 32-bit
HIGH_BLOCK = 2**56  # the high layout: one block of this size per family, above every low-layout seed
HIGH_STRIDE = 2**22  # MLPs of one job seed in the high layout; SEED_LIMIT * HIGH_STRIDE fills a block exactly


@dataclass(frozen=True)
class SeedFamily:
    """The MLP seeds of one job: ``base + stride * s + k`` for job seed s and MLP k (the low layout), or its own
    block of the high layout for job seeds from `low_seeds` on.

    :param name: what the family is for, named in errors.
    :param block: its block in the high layout (distinct per family).
    :param base: its first seed in the low layout.
    :param stride: the most MLPs one job seed draws; job seeds lie this far apart.
    :param low_seeds: job seeds below this keep the low layout; ``None``: every job seed does.
    :param job_seeds: how many job seeds the family has (``1``: a fixed set, drawn with s = 0).
    """

    name: str
    block: int
    base: int
    stride: int
    low_seeds: int | None
    job_seeds: int = SEED_LIMIT

    def seeds(self, job_seed: int, count: int) -> range:
        """The `count` MLP seeds of job seed `job_seed`, or a ValueError naming what is allowed."""
        if isinstance(job_seed, bool) or not isinstance(job_seed, int) or not 0 <= job_seed < self.job_seeds:
            raise ValueError(f"seed={job_seed!r} is not allowed for the {self.name} seeds; expected an integer in "
                             f"[0, {self.job_seeds - 1}]")
        limit = self.stride if self.low_seeds is None else min(self.stride, HIGH_STRIDE)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= limit:
            raise ValueError(f"{count!r} {self.name} MLPs are not allowed; expected an integer in [0, {limit}] (more "
                             "would reach the seeds of another job)")
        if self.low_seeds is None or job_seed < self.low_seeds:
            start = self.base + self.stride * job_seed
        else:
            start = (self.block + 1) * HIGH_BLOCK + HIGH_STRIDE * job_seed
        return range(start, start + count)


EVALUATION = SeedFamily("evaluation", 0, 1_000_000, 1000, low_seeds=1000)
CALIBRATION = SeedFamily("calibration", 1, 2_000_000, 1_000_000, low_seeds=None, job_seeds=1)
QUALITY = SeedFamily("quality", 2, 3_000_000, 1_000_000, low_seeds=None, job_seeds=1)
SUPERVISED_EPISODES = SeedFamily("supervised episodes", 3, 4_000_000, 100_000, low_seeds=10)
REFERENCE_TUNING = SeedFamily("reference tuning", 4, 5_000_000, 1_000_000, low_seeds=None, job_seeds=1)
ZOO = SeedFamily("zoo run", 5, 6_000_000, 1_000_000, low_seeds=None)
GUIDE = SeedFamily("guide", 6, 0, 1, low_seeds=None, job_seeds=1000)  # the user's seed is the MLP's seed
ZOO_FAMILY = SeedFamily("shape-family zoo run", 7, 0, HIGH_STRIDE, low_seeds=0)  # the low layout is the zoo's
TASK_ZOO = SeedFamily("task-family zoo run", 8, 0, HIGH_STRIDE, low_seeds=0)
SEED_FAMILIES = (EVALUATION, CALIBRATION, QUALITY, SUPERVISED_EPISODES, REFERENCE_TUNING, ZOO, GUIDE, ZOO_FAMILY,
                 TASK_ZOO)
FAMILY_MEMBER_STRIDE = 2**16  # runs of one member (shape) of a shape-family zoo

TUNING_SEEDS = (1000, 1001, 1002)  # the guide's tuning MLPs: above every guide seed, below every other family
CALIBRATION_BASE = CALIBRATION.base
QUALITY_BASE = QUALITY.base
ZOO_SEED_STRIDE = ZOO.stride  # a zoo holds at most this many runs


def evaluation_seeds(train_seed: int, episodes: int) -> list[int]:
    """The unseen MLPs an agent trained with `train_seed` is judged on: disjoint per training seed."""
    return list(EVALUATION.seeds(int(train_seed), episodes))


def calibration_seeds(episodes: int) -> list[int]:
    """The MLPs an exported ENN's affine calibration is fitted on."""
    return list(CALIBRATION.seeds(0, episodes))


def quality_seeds(episodes: int) -> list[int]:
    """The MLPs an ENN's ranking quality is reported on (never used for fitting or calibration)."""
    return list(QUALITY.seeds(0, episodes))


def supervised_episode_seeds(seed: int, episodes: int) -> list[int]:
    """The MLPs whose snapshots a supervised ENN fitted with `seed` learns from."""
    return list(SUPERVISED_EPISODES.seeds(int(seed), episodes))


def reference_tuning_seeds(episodes: int) -> list[int]:
    """The MLPs on which the tuned reference policies (best constant, schedule) choose their setting."""
    return list(REFERENCE_TUNING.seeds(0, episodes))


def zoo_run_seeds(zoo_seed: int, runs: int) -> list[int]:
    """The seeds of the runs of the zoo made with `zoo_seed` (each run's MLP, regime and data order)."""
    if runs > ZOO_SEED_STRIDE:
        raise ValueError(f"runs={runs} is not allowed; a zoo holds at most {ZOO_SEED_STRIDE} runs")
    return list(ZOO.seeds(int(zoo_seed), runs))


def zoo_family_run_seeds(family_seed: int, member: int, runs: int) -> list[int]:
    """The seeds of the runs of member `member` (one MLP shape) of the shape-family zoo made with `family_seed`:
    disjoint from every plain zoo's runs and from every other member's."""
    members = HIGH_STRIDE // FAMILY_MEMBER_STRIDE
    if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < members:
        raise ValueError(f"member={member!r} is not allowed; expected an integer in [0, {members - 1}]")
    if runs > FAMILY_MEMBER_STRIDE:
        raise ValueError(f"runs={runs} is not allowed; a member of a shape-family zoo holds at most "
                         f"{FAMILY_MEMBER_STRIDE} runs")
    start = member * FAMILY_MEMBER_STRIDE
    return list(ZOO_FAMILY.seeds(int(family_seed), start + runs)[start:])


def task_zoo_run_seeds(zoo_seed: int, runs: int) -> list[int]:
    """The seeds of the runs of the task-family zoo made with `zoo_seed` (each run's task, MLP, regime and data
    order): disjoint from every other zoo's runs."""
    return list(TASK_ZOO.seeds(int(zoo_seed), runs))


def guide_seeds(seeds: list[int], where: str = "seeds") -> list[int]:
    """The guide's MLP seeds as given, or a ValueError when one lies outside the guide's family (0 to 999)."""
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < GUIDE.job_seeds]
    if bad:
        raise ValueError(f"{where}={bad} is not allowed; expected integers in [0, {GUIDE.job_seeds - 1}] (seeds "
                         f"{list(TUNING_SEEDS)} tune the guide's settings, and larger ones belong to the agents' "
                         "and ENNs' families)")
    return list(seeds)
