"""Cost of one GradInstructor-v0 step against a plain PyTorch loop doing the same work.

The plain loop is what a user would write by hand: an `nn.Sequential` of `Linear` layers,
`torch.optim.SGD`, shuffled epochs sliced into minibatches, the same validation evaluation after
every `steps_per_action` minibatches, a test evaluation and a fresh MLP at every episode end.
The env runs behind `gym.make` with its default wrappers, as users run it. Both sides are timed
in alternation in one process and the median of the repeats is reported.

    python bench/env_step.py                 # digits and mnist, prints a Markdown table
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

import gi_envs
from agents.report import markdown_table
from gi_envs.task import EnvConfig

SETTINGS = {
    "digits": {"dataset": "digits", "hidden_sizes": (32,)},
    "mnist": {"dataset": "mnist", "hidden_sizes": (100,)},
}


def time_env(env: gym.Env, episodes: int, random_actions: bool) -> float:
    """Seconds per env step over `episodes` full episodes."""
    zero = np.zeros(env.action_space.shape, np.float32)
    steps, start = 0, time.perf_counter()
    for episode in range(episodes):
        env.reset(seed=episode)
        done = False
        while not done:
            action = env.action_space.sample() if random_actions else zero
            _, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            steps += 1
    return (time.perf_counter() - start) / steps


def time_plain_loop(config: EnvConfig, episodes: int) -> float:
    """Seconds per env-step-equivalent of a hand-written loop: same minibatches and evaluations."""
    data = gi_envs.load_dataset(config.dataset, data_dir=config.data_dir)
    eval_x, eval_y = data.val.x[: config.eval_samples or None], data.val.y[: config.eval_samples or None]
    generator = torch.Generator().manual_seed(0)
    n, batch = len(data.train), config.batch_size
    start = time.perf_counter()
    for _ in range(episodes):
        model = config.mlp.sequential()
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
        order, cursor = torch.randperm(n, generator=generator), 0
        for _ in range(config.episode_length):
            for _ in range(config.steps_per_action):
                if cursor + batch > n:
                    order, cursor = torch.randperm(n, generator=generator), 0
                idx = order[cursor : cursor + batch]
                cursor += batch
                optimizer.zero_grad()
                F.cross_entropy(model(data.train.x[idx]), data.train.y[idx]).backward()
                optimizer.step()
            with torch.no_grad():
                float((model(eval_x).argmax(1) == eval_y).float().mean())
        with torch.no_grad():
            float((model(data.test.x).argmax(1) == data.test.y).float().mean())
    return (time.perf_counter() - start) / (episodes * config.episode_length)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--episodes", type=int, default=10, help="episodes per timing")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats; the median is reported")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats} repeats\n")
    rows = []
    for name in args.datasets:
        kwargs = SETTINGS[name]
        config = EnvConfig.from_kwargs(**kwargs)
        env = gym.make(gi_envs.ENV_ID, **kwargs)
        env.action_space.seed(0)
        time_env(env, 1, True)  # warm-up: data loading, allocator
        time_plain_loop(config, 1)
        timings: dict[str, list[float]] = {"plain": [], "zero": [], "random": []}
        for _ in range(args.repeats):
            timings["plain"].append(time_plain_loop(config, args.episodes))
            timings["zero"].append(time_env(env, args.episodes, random_actions=False))
            timings["random"].append(time_env(env, args.episodes, random_actions=True))
        plain = statistics.median(timings["plain"])
        arch = "-".join(map(str, env.unwrapped.task.mlp.layer_sizes))
        labels = [("plain PyTorch loop", "plain"), ("env, zero action", "zero"), ("env, random actions", "random")]
        for label, key in labels:
            t = statistics.median(timings[key])
            rows.append([
                f"{name} {arch}", label, f"{1 / t:,.0f}", f"{config.steps_per_action / t:,.0f}", f"{t / plain:.2f}x",
            ])
    print(markdown_table(["data / MLP", "runner", "env steps/s", "MLP minibatch steps/s", "time / plain loop"], rows))
    print(f"\nOne env step = {config.steps_per_action} minibatches of {config.batch_size} + validation on "
          f"{config.eval_samples} samples; test evaluation and a fresh MLP every {config.episode_length} steps.")


if __name__ == "__main__":
    main()
