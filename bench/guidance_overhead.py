"""Wall time of an ENN-guided training step over a plain one, measured in one run.

Two ways to train, both on one MLP per step (a standard loop) and on the paper regimes' shapes:

- `nn.Sequential` + `torch.optim.SGD` with `loss = CE + guidance(model)` (any PyTorch loop);
- the batched trainer with `guidance.weight_gradients`, the ENN's gradient computed every step
  or every 10th step and reused in between (`guidance_every` in the guide configs).

The ENN is an untrained supervised-shaped ENN of the regime: its cost does not depend on its weights.

    python bench/guidance_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from agents.enn.guidance import ENNGuidance
from agents.enn.supervised import supervised_enn
from agents.report import markdown_table
from gi_envs import BatchedMLP, MinibatchSampler, MLPSpec, load_dataset

SHAPES = {"digits": (32,), "mnist": (32,), "mnist-100": (100,)}


def time_sequential(data, hidden, guidance: ENNGuidance | None, steps: int, batch: int = 64) -> float:
    model = MLPSpec(data.name, hidden).sequential()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    order = torch.randperm(len(data.train))
    start = time.perf_counter()
    for step in range(steps):
        idx = order[(step * batch) % (len(order) - batch):][:batch]
        loss = F.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
        if guidance is not None:
            loss = loss + guidance(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def time_batched(data, hidden, guidance: ENNGuidance | None, every: int, steps: int, batch: int = 64) -> float:
    mlp = BatchedMLP((data.n_features, *hidden, data.n_classes), 1)
    sampler = MinibatchSampler(len(data.train), batch, 1)
    generator = torch.Generator().manual_seed(0)
    mlp.initialize(0, generator)
    sampler.reset(0, generator)
    start = time.perf_counter()
    for step in range(steps):
        idx = sampler.next_indices()
        _, weight_grads, bias_grads = mlp.loss_and_gradients(data.train.x[idx], data.train.y[idx])
        if guidance is not None:
            if step % every == 0:
                extra = guidance.weight_gradients(mlp.weights)
            weight_grads = [g + e for g, e in zip(weight_grads, extra)]
        mlp.apply_gradients(weight_grads, bias_grads, 0.01)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        dataset = name.split("-")[0]
        hidden = SHAPES[name]
        data = load_dataset(dataset)
        enn = supervised_enn({"dataset": dataset, "hidden_sizes": hidden})
        guidance = ENNGuidance(enn, weight=1.0, record_every=0)
        runs = {
            "Sequential + SGD, plain": lambda: time_sequential(data, hidden, None, args.steps),
            "Sequential + SGD, guided": lambda: time_sequential(data, hidden, guidance, args.steps),
            "batched trainer, plain": lambda: time_batched(data, hidden, None, 1, args.steps),
            "batched trainer, guided every step": lambda: time_batched(data, hidden, guidance, 1, args.steps),
            "batched trainer, guided every 10th step": lambda: time_batched(data, hidden, guidance, 10, args.steps),
            "batched trainer, guided every 25th step": lambda: time_batched(data, hidden, guidance, 25, args.steps),
        }
        for run in runs.values():
            run()  # warm-up
        seconds = {label: [] for label in runs}
        for _ in range(args.repeats):  # alternate, so drift hits every runner alike
            for label, run in runs.items():
                seconds[label].append(run())
        median = {label: statistics.median(v) for label, v in seconds.items()}
        arch = "-".join(map(str, (data.n_features, *hidden, data.n_classes)))
        for label, t in median.items():
            plain = median["Sequential + SGD, plain" if label.startswith("Sequential") else "batched trainer, plain"]
            rows.append([f"{dataset} {arch}", label, f"{1e3 * t:.3f}", f"{t / plain:.2f}x"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch 64; median of {args.repeats} repeats "
          f"of {args.steps} steps\n")
    print(markdown_table(["data / MLP", "training step", "ms / step", "time / plain step"], rows))


if __name__ == "__main__":
    main()
