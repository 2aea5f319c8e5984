"""Wall time of an ENN-guided training step over a plain one, measured in one run.

Two ways to train, both on one MLP per step (a standard loop) and on the paper regimes' shapes:

- `nn.Sequential` + `torch.optim.SGD` with `loss = CE + guidance(model)` (any PyTorch loop);
- the batched trainer with `guidance.weight_gradients`, the ENN's gradient computed every step
  or every 10th step and reused in between (`guidance_every` in the guide configs).

Each encoder gets its rows (`--encoders`): the image CNN over the env's mean + rms image at 0.15,
and the statistics encoder. The last row of each is the ENN's forward plus backward pass alone
(`guidance.weight_gradients`), what guidance adds to a step, against a plain `nn.Sequential` step.
The ENNs are untrained value-shaped ENNs: their cost does not depend on their weights.

    python bench/guidance_overhead.py
    python bench/guidance_overhead.py --datasets digits --encoders stats
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F

from agents.enn.encoder import ENCODERS
from agents.enn.fit import untrained_value_enn
from agents.enn.guidance import ENNGuidance
from agents.experiments.guide.rows import ExtraTerms
from agents.report import markdown_table
from gi_envs import MLPSpec, Regime, Training, load_dataset

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
    training = Training(MLPSpec(data.name, hidden), data, 1)
    training.reset(0, 0, Regime(lr=0.01, batch_size=batch))
    terms = ExtraTerms(training.mlp, 0.0, guidance, every)
    start = time.perf_counter()
    for _ in range(steps):
        training.step(terms if guidance is not None else None)
    return (time.perf_counter() - start) / steps


def time_enn_alone(mlp_spec: MLPSpec, guidance: ENNGuidance, steps: int) -> float:
    """The ENN's forward and backward pass for one MLP's weights: what a guided step adds."""
    linears = [layer for layer in mlp_spec.sequential() if isinstance(layer, torch.nn.Linear)]
    weights = [layer.weight.detach() for layer in linears]
    biases = [layer.bias.detach() for layer in linears] if guidance.enn.reads_biases else None
    start = time.perf_counter()
    for _ in range(steps):
        guidance.weight_gradients(weights, biases)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = parser.parse_args()
    rows = []
    for name in args.datasets:
        dataset = name.split("-")[0]
        hidden = SHAPES[name]
        data = load_dataset(dataset)
        mlp_spec = MLPSpec(dataset, hidden)
        runs = {"Sequential + SGD, plain": partial(time_sequential, data, hidden, None, args.steps),
                "training core, plain": partial(time_batched, data, hidden, None, 1, args.steps)}
        for encoder in args.encoders:
            g = ENNGuidance(untrained_value_enn(mlp_spec, encoder), weight=1.0, record_every=0)
            runs |= {
                f"Sequential + SGD, guided ({encoder})": partial(time_sequential, data, hidden, g, args.steps),
                f"training core, guided every step ({encoder})": partial(time_batched, data, hidden, g, 1, args.steps),
                f"training core, guided every 10th step ({encoder})": partial(time_batched, data, hidden, g, 10,
                                                                              args.steps),
                f"ENN forward + backward alone ({encoder})": partial(time_enn_alone, mlp_spec, g, args.steps),
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
            plain = median["training core, plain" if label.startswith("training core") else "Sequential + SGD, plain"]
            rows.append([f"{dataset} {arch}", label, f"{1e3 * t:.3f}", f"{t / plain:.2f}x"])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch 64; median of {args.repeats} repeats "
          f"of {args.steps} steps\n")
    print(markdown_table(["data / MLP", "training step", "ms / step", "time / plain step (same trainer)"], rows))


if __name__ == "__main__":
    main()
