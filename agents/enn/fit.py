"""Fitting an ENN by regression: new value-shaped ENNs of either encoder, and the one fitting loop.

Both supervised paths use it: the ENN fitted to GradInstructor episodes (`agents.enn.supervised`)
and the ENN fitted to a randomized zoo (`fit_zoo_enn`, behind ``grad-instructor fit-enn``). The loss
is the mean-squared error on accuracy; the epoch kept is the one with the best loss on held-out
groups (episodes or runs) of the fit data, never on the data the ENN is later scored on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from agents.enn.encoder import ZOO_FIT, FitSettings, encoder_kind
from agents.enn.network import ENN, enn_metadata
from agents.enn.zoo import Zoo
from gi_envs.spec import ImageSpec, MLPSpec

INPUT_CHUNK = 512  # MLPs per chunk when turning weights into encoder inputs


def untrained_value_enn(mlp: MLPSpec, encoder: str = "image", image: ImageSpec | None = None,
                        source: dict | None = None, hidden: int = 64, encoder_options: dict | None = None) -> ENN:
    """An untrained ENN (encoder -> Linear -> tanh -> Linear) for MLPs of `mlp`.

    :param encoder: a name of `ENCODERS`; ``image`` reads `image` (default the env's image).
    :param encoder_options: settings over the encoder's defaults (a probing encoder's ``n_probes``, ``probes``).
    """
    kind = encoder_kind(encoder)
    image = (image or ImageSpec()) if kind.reads_image else None
    channels = image.shape(mlp)[0] if image is not None else 0
    encoder_spec = {"type": encoder, **kind.new_spec(mlp.layer_shapes, channels),
                    **({"activation": mlp.activation} if kind.reads_probes else {})}
    unknown = sorted(set(encoder_options or {}) - set(encoder_spec) - {"type"})
    if unknown:
        raise ValueError(f"encoder options {unknown} are not settings of the {encoder!r} encoder; expected some of "
                         f"{sorted(set(encoder_spec) - {'type'})}")
    encoder_spec.update(encoder_options or {})
    features_dim = encoder_spec["features_dim"]
    architecture = {"kind": "value", "encoder": encoder_spec,
                    "head": [{"type": "linear", "in": features_dim, "out": hidden}, {"type": "tanh"},
                             {"type": "linear", "in": hidden, "out": 1}]}
    return ENN(enn_metadata(architecture, mlp, image, source=dict(source or {})))


@torch.no_grad()
def inputs_of_arrays(enn: ENN, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None = None
                     ) -> torch.Tensor:
    """`enn.inputs_of` for stacked NumPy weight matrices (each (M, out, in)) and biases (each (M, out)), in chunks."""

    def chunk(arrays: Sequence[np.ndarray] | None, i: int) -> list[torch.Tensor] | None:
        if arrays is None:
            return None
        return [torch.from_numpy(np.ascontiguousarray(a[i : i + INPUT_CHUNK])).float() for a in arrays]

    parts = [enn.inputs_of(chunk(weights, i), chunk(biases, i) if enn.reads_biases else None)
             for i in range(0, len(weights[0]), INPUT_CHUNK)]
    return torch.cat(parts)


def data_probes(dataset: str, n: int, seed: int = 0) -> torch.Tensor:
    """`n` unlabeled inputs of `dataset`'s training split (never its validation or test split), drawn by `seed`."""
    from gi_envs.datasets import load_dataset

    x = load_dataset(dataset).train.x
    return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]].clone()


def fit_regressor(enn: ENN, inputs: torch.Tensor, targets: np.ndarray, groups: np.ndarray,
                  settings: FitSettings | None = None, progress: bool = False) -> dict[str, float]:
    """Fit `enn` (in place) to predict `targets` from `inputs`, keeping the epoch of lowest MSE on a
    held-out `settings.val_share` of the `groups` (whole episodes or runs). Its output is accuracy already
    (calibration 1, 0). A stats encoder is first standardized on the fitted inputs. The minibatch
    order draws from torch's global generator: seed it before building the ENN.

    :return: ``best_val_mse``, ``epochs``, ``best_epoch``, ``fitted`` and ``early_stop`` sizes.
    """
    settings = settings or FitSettings()
    rng = np.random.default_rng(settings.seed)
    ids = np.unique(groups)
    held = rng.choice(ids, size=max(1, int(round(settings.val_share * len(ids)))), replace=False)
    is_val = torch.from_numpy(np.isin(groups, held))
    y = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    x_fit, y_fit, x_val, y_val = inputs[~is_val], y[~is_val], inputs[is_val], y[is_val]
    if hasattr(enn.encoder, "standardize"):  # stats and nfn encoders centre and scale their inputs on the fit set
        enn.encoder.standardize(x_fit)
        # what the encoder learnt of the fit set that its metadata must say to rebuild it (an any-shape one's shapes)
        enn.metadata["architecture"]["encoder"].update(getattr(enn.encoder, "fitted_spec", dict)())
    optimizer = torch.optim.Adam(enn.parameters(), lr=settings.lr)
    best, best_epoch, best_state = float("inf"), -1, None
    for epoch in tqdm(range(settings.epochs), desc="fitting the ENN", unit="epoch", disable=not progress):
        enn.train()
        order = torch.randperm(len(y_fit))
        for i in range(0, len(order), settings.batch_size):
            idx = order[i : i + settings.batch_size]
            loss = F.mse_loss(enn(x_fit[idx]), y_fit[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        enn.eval()
        with torch.no_grad():
            val_loss = float(F.mse_loss(enn(x_val), y_val))
        if val_loss < best:
            best, best_epoch, best_state = val_loss, epoch, {k: v.clone() for k, v in enn.state_dict().items()}
        elif settings.patience is not None and epoch - best_epoch >= settings.patience:
            break
    assert best_state is not None
    enn.load_state_dict(best_state)
    enn.eval()
    return {"best_val_mse": best, "epochs": settings.epochs, "epochs_run": epoch + 1, "best_epoch": best_epoch,
            "fitted": int(len(y_fit)), "early_stop": int(len(y_val))}


def fit_zoo_enn(zoo: Zoo | Sequence[Zoo], encoder: str = "stats", target: str = "current",
                image: ImageSpec | None = None, epochs: int = ZOO_FIT.epochs, seed: int = 0, progress: bool = True,
                zoo_path: str | None = None, encoder_options: dict | None = None,
                probe_inputs: np.ndarray | None = None) -> ENN:
    """A supervised ENN fitted to the zoo's fit runs only, with its encoder's `EncoderKind.zoo_fit` (for ``image``
    and ``stats`` minibatches of 32, early-stopped on a tenth of the fit runs after 30 epochs without improvement,
    at most `epochs`).

    :param zoo: one zoo, or several of one data set and activation (a shape-family zoo,
        `agents.enn.zoo_family`): MLPs of several shapes need an any-shape encoder (``any-stats``,
        ``any-probe+stats``), and the ENN's ``target`` is the first zoo's MLP.
    :param encoder: a name of `ENCODERS` (``image`` reads `image`, default the env's mean + rms image at 0.15).
    :param target: ``current`` (each snapshot's validation accuracy) or ``final`` (the accuracy its
        run ends with: a trainability prior).
    :param encoder_options: settings over the encoder's defaults (`untrained_value_enn`).
    :param probe_inputs: (P, in) unlabeled inputs as a probing encoder's probes (``probes="inputs"``); without
        them, ``probes="data"`` draws P = ``n_probes`` inputs of the zoo's training split.
    """
    zoos = [zoo] if isinstance(zoo, Zoo) else list(zoo)
    kind = encoder_kind(encoder)
    check_zoos_fit(zoos, kind.name, kind.any_shape)
    targets = [z.targets(target) for z in zoos]  # a bad target fails before any work
    settings = replace(kind.zoo_fit, epochs=epochs, seed=seed)
    options = dict(encoder_options or {})
    if probe_inputs is not None:
        options.update(probes="inputs", n_probes=len(probe_inputs))
    torch.manual_seed(seed)
    mlp = zoos[0].spec.mlp
    source = {"kind": "zoo", "zoo": zoo_path, "target": target, "zoo_seed": zoos[0].spec.seed,
              "zoo_runs": sum(z.spec.runs for z in zoos)}
    if len(zoos) > 1:
        source["zoo_shapes"] = [list(z.spec.mlp.hidden_sizes) for z in zoos]
    enn = untrained_value_enn(mlp, encoder, image, encoder_options=options, source=source)
    if enn.encoder_kind.reads_probes:
        if probe_inputs is not None:
            enn.encoder.set_probe_inputs(torch.as_tensor(probe_inputs, dtype=torch.float32))
        elif enn.metadata["architecture"]["encoder"]["probes"] == "data":
            enn.encoder.set_probe_inputs(data_probes(mlp.dataset, len(enn.encoder.probes), seed))
    inputs, fit_targets, groups, offset = [], [], [], 0
    for z, y in zip(zoos, targets):
        fit = ~z.held_out
        if not fit.any():  # a task-family zoo's member may hold held-out runs only
            offset += z.spec.runs
            continue
        inputs.append(inputs_of_arrays(enn, [w[fit] for w in z.weights], [b[fit] for b in z.biases]))
        fit_targets.append(y[fit])
        groups.append(z.run[fit] + offset)  # runs of different zoos are different groups
        offset += z.spec.runs
    report = fit_regressor(enn, torch.cat(inputs), np.concatenate(fit_targets), np.concatenate(groups), settings,
                           progress=progress)
    enn.metadata["source"].update(report, fit=asdict(settings))
    return enn


def check_zoos_fit(zoos: Sequence[Zoo], encoder: str, any_shape: bool) -> None:
    """A ValueError unless `zoos` can fit one ENN of `encoder`: at least one, of one data set and activation, and of
    one shape unless the encoder reads any."""
    if not zoos:
        raise ValueError("fitting an ENN needs at least one zoo")
    first = zoos[0].spec.mlp
    for z in zoos[1:]:
        mlp = z.spec.mlp
        if (mlp.dataset, mlp.activation) != (first.dataset, first.activation):
            hint = ("; a task-family zoo's folder holds every data set its runs drew: pass one data set's files "
                    "(DATASET-*.npz) or draw the zoo from one data set" if z.spec.tasks is not None else "")
            raise ValueError(f"zoos of {first.dataset} {first.activation} MLPs and of {mlp.dataset} {mlp.activation} "
                             f"MLPs cannot fit one ENN; expected one data set and activation{hint}")
        if mlp.layer_shapes != first.layer_shapes and not any_shape:
            raise ValueError(f"zoos of MLPs of several shapes ({'-'.join(map(str, first.layer_sizes))}, "
                             f"{'-'.join(map(str, mlp.layer_sizes))}) need an any-shape encoder "
                             f"(any-stats or any-probe+stats), not {encoder!r}")
