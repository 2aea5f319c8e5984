"""Throughput of N GradInstructor envs in one process: four ways to run the same work.

    (a) DummyVecEnv   SB3's DummyVecEnv over N single envs: a Python loop, one MLP at a time
    (b) Subproc x2    SB3's SubprocVecEnv with 2 worker processes, each looping over N/2 single envs
    (c) native        GradInstructorVectorEnv through the SB3 adapter: all N MLPs in batched matmuls
    (d) plain loop    hand-written PyTorch doing the same training and evaluation for N stacked
                      MLPs (bmm + autograd + torch.optim.SGD): the practical limit

Every runner trains N MLPs for whole episodes (fresh MLPs, test evaluation at every episode end)
with random actions for (a)-(c). One run, one table; ratios are to (a) and to (d) of the same
row. GFLOP/s counts the matmul work of training and evaluation, against a matmul peak measured
at the start of the run.

    python bench/env_throughput.py                       # digits N in 1 8 32 128, mnist N in 1 8 32
    python bench/env_throughput.py --datasets digits --sizes 1 8 --min-seconds 0.3
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

import gi_envs
from agents.report import markdown_table
from gi_envs import ENV_ID, EnvConfig, make_sb3_vec_env

SETTINGS = {"digits": {"dataset": "digits", "hidden_sizes": (32,)},
            "mnist": {"dataset": "mnist", "hidden_sizes": (100,)}}
DEFAULT_SIZES = {"digits": [1, 8, 32, 128], "mnist": [1, 8, 32]}


class EnvGroup(gym.Env):
    """Several single envs behind one `gym.Env`, so that one SubprocVecEnv worker loops over many.

    Only for measuring throughput: it resets finished sub-envs itself and never reports `done`.
    """

    def __init__(self, n: int, kwargs: dict, first_seed: int):
        self.envs = [gym.make(ENV_ID, **kwargs) for _ in range(n)]
        single = self.envs[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n, *single.observation_space.shape), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n, *single.action_space.shape), np.float32)
        self.first_seed = first_seed

    def reset(self, *, seed=None, options=None):
        obs = [env.reset(seed=self.first_seed + i)[0] for i, env in enumerate(self.envs)]
        return np.stack(obs), {}

    def step(self, action):
        obs = []
        for env, a in zip(self.envs, action):
            o, _, terminated, truncated, _ = env.step(a)
            obs.append(env.reset()[0] if terminated or truncated else o)
        return np.stack(obs), 0.0, False, False, {}


def make_dummy(n: int, kwargs: dict) -> VecEnv:
    return DummyVecEnv([lambda: gym.make(ENV_ID, **kwargs) for _ in range(n)])


def make_subproc(n: int, kwargs: dict) -> VecEnv:
    workers = min(2, n)
    sizes = [n // workers + (1 if w < n % workers else 0) for w in range(workers)]
    starts = np.cumsum([0, *sizes[:-1]])
    return SubprocVecEnv([lambda s=s, k=k: EnvGroup(s, kwargs, int(k)) for s, k in zip(sizes, starts)],
                         start_method="fork")


def make_native(n: int, kwargs: dict) -> VecEnv:
    return make_sb3_vec_env(n, **kwargs)


def time_vec_env(venv: VecEnv, config: EnvConfig, min_seconds: float) -> float:
    """Seconds per vector step (all N envs one step), over whole episodes."""
    rng = np.random.default_rng(0)
    action_shape = (venv.num_envs, *venv.action_space.shape)
    venv.seed(0)
    venv.reset()
    steps, start = 0, time.perf_counter()
    while True:
        for _ in range(config.episode_length):
            venv.step(rng.uniform(-1, 1, action_shape).astype(np.float32))
        steps += config.episode_length
        if time.perf_counter() - start >= min_seconds:
            return (time.perf_counter() - start) / steps


def time_plain_loop(n: int, config: EnvConfig, min_seconds: float) -> float:
    """Seconds per step-equivalent of a hand-written batched loop over N MLPs (no env around it)."""
    data = gi_envs.load_dataset(config.dataset, data_dir=config.data_dir)
    sizes = (data.n_features, *config.hidden_sizes, data.n_classes)
    eval_x, eval_y = data.val.x[: config.eval_samples], data.val.y[: config.eval_samples]
    n_train, batch = len(data.train), config.batch_size
    batches_per_epoch = n_train // batch

    def forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        h = x
        for i in range(0, len(params), 2):
            w, b = params[i], params[i + 1]
            h = torch.matmul(h, w.transpose(1, 2)) + b.unsqueeze(1)
            if i < len(params) - 2:
                h = torch.relu(h)
        return h

    steps, start = 0, time.perf_counter()
    while True:
        params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1 / math.sqrt(fan_in)
            params += [torch.empty(n, fan_out, fan_in).uniform_(-bound, bound).requires_grad_(),
                       torch.empty(n, fan_out).uniform_(-bound, bound).requires_grad_()]
        optimizer = torch.optim.SGD(params, lr=config.lr)
        order, batch_index = torch.argsort(torch.rand(n, n_train), dim=1), 0
        for _ in range(config.episode_length):
            for _ in range(config.steps_per_action):
                if batch_index == batches_per_epoch:
                    order, batch_index = torch.argsort(torch.rand(n, n_train), dim=1), 0
                idx = order[:, batch_index * batch : (batch_index + 1) * batch]
                batch_index += 1
                logits = forward(params, data.train.x[idx])
                loss = F.cross_entropy(logits.flatten(0, 1), data.train.y[idx].flatten()) * n
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                (forward(params, eval_x).argmax(2) == eval_y).float().mean(1).numpy()
        with torch.no_grad():
            (forward(params, data.test.x).argmax(2) == data.test.y).float().mean(1).numpy()
        steps += config.episode_length
        if time.perf_counter() - start >= min_seconds:
            return (time.perf_counter() - start) / steps


def flops_per_env_step(config: EnvConfig) -> float:
    """Matmul FLOPs of one env step of one MLP: minibatch forward + backward, evaluations."""
    data = gi_envs.load_dataset(config.dataset, data_dir=config.data_dir)
    sizes = (data.n_features, *config.hidden_sizes, data.n_classes)
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    first = sizes[0] * sizes[1]
    train = config.steps_per_action * config.batch_size * (6 * weights - 2 * first)  # no input gradient at layer 1
    evaluation = 2 * weights * (min(config.eval_samples or len(data.val), len(data.val))
                                + len(data.test) / config.episode_length)
    return float(train + evaluation)


def matmul_peak_gflops(size: int = 1024, seconds: float = 1.0) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--sizes", nargs="+", type=int, default=None, help="N values (default: per data set)")
    parser.add_argument("--min-seconds", type=float, default=1.5, help="least time per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per cell; the median is reported")
    args = parser.parse_args()

    peak = matmul_peak_gflops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul peak "
          f"{peak:.1f} GFLOP/s (1024x1024); median of {args.repeats} repeats, random actions\n")
    runners: dict[str, Callable[[int, dict], VecEnv] | None] = {
        "(a) DummyVecEnv": make_dummy, "(b) Subproc x2": make_subproc, "(c) native": make_native,
        "(d) plain loop": None,
    }
    rows = []
    for name in args.datasets:
        kwargs = SETTINGS[name]
        config = EnvConfig.from_kwargs(**kwargs)
        flops = flops_per_env_step(config)
        for n in args.sizes or DEFAULT_SIZES[name]:
            seconds: dict[str, float] = {}
            for label, make in runners.items():
                if make is None:
                    time_plain_loop(n, config, 0.0)  # warm-up
                    seconds[label] = statistics.median(time_plain_loop(n, config, args.min_seconds)
                                                       for _ in range(args.repeats))
                    continue
                venv = make(n, kwargs)
                time_vec_env(venv, config, 0.0)  # warm-up
                seconds[label] = statistics.median(time_vec_env(venv, config, args.min_seconds)
                                                   for _ in range(args.repeats))
                venv.close()
            for label, t in seconds.items():
                env_steps = n / t
                gflops = env_steps * flops / 1e9
                rows.append([
                    name, n, label, f"{env_steps:,.0f}", f"{env_steps * config.steps_per_action:,.0f}",
                    f"{seconds['(a) DummyVecEnv'] / t:.2f}x", f"{seconds['(d) plain loop'] / t:.2f}x",
                    f"{gflops:.2f} ({100 * gflops / peak:.0f}%)",
                ])
            print(f"done: {name} N={n}", flush=True)
    print()
    print(markdown_table(
        ["data", "N", "runner", "env steps/s", "MLP minibatch steps/s", "speed vs (a)", "speed vs (d)",
         "GFLOP/s (% of peak)"],
        rows,
    ))


if __name__ == "__main__":
    main()
