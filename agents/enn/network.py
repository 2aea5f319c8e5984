"""The Evaluation Neural Network: a standalone module that predicts an MLP's accuracy from its weights.

An `ENN` is rebuilt from JSON metadata alone (architecture with its encoder, the target MLP it was
made for, the weight-image settings of an image encoder, its calibration), so loading one needs
neither Stable-Baselines3 nor any pickled object: `ENN.save` writes the state_dict and the metadata
into one `torch.save` file of tensors and a JSON string, read back with `torch.load(weights_only=True)`.

Its encoder (`agents.enn.encoder`) reads either the weight image (``image``, the paper's, and every
RL critic's) or permutation-invariant weight statistics (``stats``); `ENN.inputs_of` turns weight
matrices into what the encoder reads, differentiably, and `ENN.forward` takes that tensor.

The network is one of two shapes, both made of an encoder and plain layers:

- ``value``: encoder -> head MLP -> scalar, the state value V(s) of an on-policy critic
  (PPO, A2C, TRPO; RecurrentPPO with its critic LSTM run from a zero state), or a supervised
  regressor;
- ``q_of_policy``: Q(s, pi(s)) of an off-policy critic (SAC, TD3, DDPG, TQC, CrossQ), the actor's
  deterministic action fed to every Q-network, averaged over networks (and over quantiles for TQC).

Its raw output is mapped to accuracy by an affine calibration `scale * raw + offset`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.enn.encoder import ENCODERS, EncoderKind, build_encoder
from gi_envs.batched_mlp import BatchedMLP
from gi_envs.files import atomic_torch_save, load_torch_payload
from gi_envs.spec import ImageSpec, MLPSpec
from gi_envs.weight_statistics import STATISTIC_NAMES, STATISTICS_PER_LAYER, weight_statistics

ENN_FORMAT = "grad-instructor-enn/1"
PRETRAINED_PACKAGE = "agents.enn"  # shipped ENN files live in its pretrained/ folder (package data)
ACTIVATION_LAYERS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "elu": nn.ELU,
                     "leaky_relu": nn.LeakyReLU, "silu": nn.SiLU}


class Affine(nn.Module):
    """y = x * scale + shift, per feature: what an evaluation-mode batch norm layer computes."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class LastStepLSTM(nn.Module):
    """One LSTM step from a zero state: how a recurrent critic scores an observation on its own."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x.unsqueeze(0))
        return out.squeeze(0)


def build_layers(spec: Sequence[dict[str, Any]]) -> nn.Sequential:
    """An `nn.Sequential` from a JSON layer list: linear, affine, lstm, or an activation name."""
    layers: list[nn.Module] = []
    for layer in spec:
        kind = layer["type"]
        if kind == "linear":
            layers.append(nn.Linear(layer["in"], layer["out"]))
        elif kind == "affine":
            layers.append(Affine(layer["dim"]))
        elif kind == "lstm":
            layers.append(LastStepLSTM(layer["in"], layer["hidden"], layer.get("layers", 1)))
        elif kind in ACTIVATION_LAYERS:
            layers.append(ACTIVATION_LAYERS[kind]())
        else:
            raise ValueError(f"unknown layer type {kind!r} in ENN metadata")
    return nn.Sequential(*layers)


class ENN(nn.Module):
    """Predicts validation accuracy from what its encoder reads, (N, ...) -> (N,), or from MLPs (`predict`).

    :param metadata: what `ENN.load` reads back: ``architecture`` (``kind``, ``encoder`` with its
        ``type``, ``head`` or ``actor_encoder``/``actor``/``q_nets``), ``target`` (an `MLPSpec`),
        ``image`` (an `ImageSpec`; ``None`` for a ``stats`` encoder), ``calibration`` (``scale``,
        ``offset``), and free-form ``source`` / ``quality``.
    """

    def __init__(self, metadata: dict[str, Any]):
        super().__init__()
        self.metadata = json.loads(json.dumps(metadata))  # a plain JSON copy
        self.mlp_spec = MLPSpec.from_dict(self.metadata["target"])
        arch = self.metadata["architecture"]
        self.kind = arch["kind"]
        self.encoder_type: str = arch["encoder"].get("type", "image")  # a name of ENCODERS: what the ENN reads
        if self.encoder_type not in ENCODERS:
            raise ValueError(f"unknown encoder type {self.encoder_type!r} in ENN metadata; expected one of "
                             f"{list(ENCODERS)}")
        self.encoder_kind: EncoderKind = ENCODERS[self.encoder_type]
        image = self.metadata.get("image")
        if self.encoder_kind.reads_image and image is None:
            raise ValueError("an ENN with an image encoder needs the 'image' settings in its metadata")
        self.image_spec: ImageSpec | None = ImageSpec.from_dict(image) if self.encoder_kind.reads_image else None
        self.encoder = build_encoder(arch["encoder"])
        if self.kind == "value":
            self.head = build_layers(arch["head"])
        elif self.kind == "q_of_policy":
            self.actor_encoder = build_encoder(arch["actor_encoder"])
            self.actor = build_layers(arch["actor"])
            self.q_nets = nn.ModuleList(build_layers(q) for q in arch["q_nets"])
        else:
            raise ValueError(f"unknown ENN kind {self.kind!r}; expected 'value' or 'q_of_policy'")
        calibration = self.metadata.setdefault("calibration", {"scale": 1.0, "offset": 0.0})
        self.register_buffer("scale", torch.tensor(float(calibration["scale"])))
        self.register_buffer("offset", torch.tensor(float(calibration["offset"])))

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(out, in) of the target MLP's weight matrices this ENN was made for."""
        return list(self.mlp_spec.layer_shapes)

    def require_image(self, what: str) -> ImageSpec:
        """The ENN's image settings; a clear error for an ENN that reads no image."""
        if self.image_spec is None:
            raise ValueError(f"{what} needs an ENN that reads weight images; this ENN's encoder is "
                             f"{self.encoder_type!r}")
        return self.image_spec

    def raw(self, inputs: torch.Tensor) -> torch.Tensor:
        """The critic's (or regressor's) own output, before calibration, for `inputs_of(weights)`."""
        features = self.encoder(inputs)
        if self.kind == "value":
            return self.head(features).squeeze(-1)
        action = self.actor(self.actor_encoder(inputs))
        q_in = torch.cat([features, action], dim=1)
        return torch.stack([q(q_in).mean(dim=1) for q in self.q_nets]).mean(dim=0)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Predicted accuracy of each MLP, from `inputs_of` its weights (a weight image for ``image``)."""
        return self.scale * self.raw(inputs) + self.offset

    def set_calibration(self, scale: float, offset: float) -> None:
        self.scale.fill_(scale)
        self.offset.fill_(offset)
        self.metadata["calibration"] = {"scale": float(scale), "offset": float(offset)}

    def check_shapes(self, layer_shapes: Sequence[Sequence[int]], what: str = "this ENN") -> None:
        """Raise a ValueError if an MLP's weight shapes are not those this ENN reads (`shapes_read`)."""
        if self.any_shape:
            self.encoder.check_shapes(layer_shapes, what=what)
        else:
            self.mlp_spec.check_shapes(layer_shapes, what=what)

    @property
    def any_shape(self) -> bool:
        """Whether the ENN reads MLPs of any hidden widths and depth of its data set (an any-shape encoder)."""
        return self.encoder_kind.any_shape

    @property
    def shapes_read(self) -> str:
        """Which MLPs this ENN reads, in words: 'digits 64-32-10', or for an any-shape ENN 'digits MLPs (64 inputs,
        10 classes) of 1 to 3 hidden layers of widths 16 to 256'."""
        spec = self.mlp_spec
        if not self.any_shape:
            return f"{spec.dataset} {'-'.join(map(str, spec.layer_sizes))}"
        n_in, n_out = spec.layer_sizes[0], spec.layer_sizes[-1]
        return f"{spec.dataset} MLPs ({n_in} inputs, {n_out} classes) of {self.encoder.shapes_read()}"

    @property
    def reads_image(self) -> bool:
        """Whether the encoder reads the weight image (``image``): then the ENN has image settings."""
        return self.encoder_kind.reads_image

    @property
    def reads_biases(self) -> bool:
        """Whether the encoder reads biases too (``nfn``): then every caller hands them over."""
        return self.encoder_kind.reads_biases

    def inputs_of(self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor] | None = None
                  ) -> torch.Tensor:
        """What this ENN's encoder reads, after checking the shapes; differentiable in `weights` (and `biases`).

        :param weights: the MLP's weight matrices, each (out, in), or (N, out, in) for N MLPs.
        :param biases: its bias vectors, each (out,) or (N, out); read by an ``nfn`` encoder only (which needs them).
        :return: (N, C, H, W) weight images for an ``image`` encoder, (N, F) statistics for ``stats``, (N, P)
            packed weights and biases for ``nfn``.
        """
        self.check_shapes([w.shape[-2:] for w in weights])
        if weights[0].dim() == 2:
            weights = [w.unsqueeze(0) for w in weights]
        if self.reads_image:
            self.require_image("image_of")
        if self.reads_biases:
            if biases is None:
                raise ValueError(f"an ENN with an {self.encoder_type!r} encoder reads biases too; pass them beside the "
                                 "weights")
            biases = [b.unsqueeze(0) if b.dim() == 1 else b for b in biases]
            expected = [w.shape[-2] for w in weights]
            if [b.shape[-1] for b in biases] != expected:
                raise ValueError(f"this ENN reads biases of sizes {expected}, got {[b.shape[-1] for b in biases]}")
        if self.encoder_kind.inputs is None:  # an any-shape encoder computes what it reads
            return self.encoder.inputs_of(weights, biases if self.reads_biases else None)
        return self.encoder_kind.inputs(weights, biases if self.reads_biases else None, self.image_spec)

    def image_of(self, weights: Sequence[torch.Tensor]) -> torch.Tensor:
        """The weight image this ENN reads (an ``image`` encoder's `inputs_of`)."""
        self.require_image("image_of")
        return self.inputs_of(weights)

    @torch.no_grad()
    def predict(self, models: BatchedMLP | Sequence[nn.Module | Mapping[str, torch.Tensor]], flags: bool = False
                ) -> np.ndarray | tuple[np.ndarray, ZooDistance]:
        """Predicted accuracy of each of a user's MLPs, as a NumPy array (with `flags`, and how far each lies
        from the zoo the ENN was fitted on, `zoo_distance`: a flagged MLP's prediction is not to be trusted).

        :param models: a `BatchedMLP` (one prediction per model), or a list whose items are
            `nn.Module`s of any class whose `nn.Linear` layers are registered in forward order (an
            `nn.Sequential`, or a class with ``fc1``, ``fc2`` attributes), or their state_dicts
            (the 2-D ``*.weight`` entries, in order, and the ``*.bias`` entries beside them), bare or inside
            a checkpoint dict (``{"model": sd}``, ``{"state_dict": sd}``).
        :return: one accuracy in [0, 1] per model (and, with `flags`, their `ZooDistance`).
        """
        groups = self._groups_of(models)
        n = sum(len(group.indices) for group in groups)
        predicted = np.zeros(n)
        for group in groups:  # an accuracy: the affine calibration can leave [0, 1] far outside the zoo, it may not
            raw = self(self.inputs_of(group.weights, group.biases)).numpy().astype(np.float64)
            predicted[group.indices] = np.clip(raw, 0.0, 1.0)
        return (predicted, self._distance_of(groups, n)) if flags else predicted

    def _groups_of(self, models: BatchedMLP | Sequence[nn.Module | Mapping[str, torch.Tensor]]) -> list[ShapeGroup]:
        """`models` as groups of one shape each (one group, but for an any-shape ENN given MLPs of several), with
        their stacked (N, out, in) weight matrices (and biases, for an encoder that reads them)."""
        if isinstance(models, BatchedMLP):
            return [ShapeGroup(np.arange(models.n_models), [w.detach() for w in models.weights],
                               [b.detach() for b in models.biases])]
        if isinstance(models, (nn.Module, Mapping)):
            raise TypeError("ENN.predict takes a list of models (or a BatchedMLP); wrap a single one: [model]")
        per_model = [linear_layers(m, f"model {i}", biases=self.reads_biases) for i, m in enumerate(models)]
        by_shape: dict[tuple, list[int]] = {}
        for i, (matrices, _) in enumerate(per_model):
            shapes = tuple(tuple(m.shape) for m in matrices)
            self.check_shapes(shapes, what=f"this ENN (model {i} of the list)")
            by_shape.setdefault(shapes, []).append(i)
        groups = []
        for indices in by_shape.values():
            layers = range(len(per_model[indices[0]][0]))
            weights = [torch.stack([per_model[i][0][k].detach().float() for i in indices]) for k in layers]
            biases = [torch.stack([per_model[i][1][k].detach().float() for i in indices]) for k in layers] \
                if self.reads_biases else None
            groups.append(ShapeGroup(np.array(indices), weights, biases))
        return groups

    def zoo_distance(self, models: BatchedMLP | Sequence[nn.Module | Mapping[str, torch.Tensor]]) -> ZooDistance:
        """How far each MLP lies from the zoo the ENN was fitted on: the largest distance of one of its weight
        statistics from the zoo's median, in the zoo's robust standard deviations (the ``stats``, ``probe+stats``
        and any-shape encoders record both); an MLP beyond `OUT_OF_ZOO`, or of a width or depth the zoo did not
        hold (any-shape ENNs), is flagged, with why. An ENN of another encoder records no zoo statistics: NaN
        distances, nothing flagged."""
        groups = self._groups_of(models)
        return self._distance_of(groups, sum(len(group.indices) for group in groups))

    def _distance_of(self, groups: list[ShapeGroup], n: int) -> ZooDistance:
        """`zoo_distance` of the MLPs of `groups` (`n` in all)."""
        distance, outside, reasons = np.full(n, np.nan), np.zeros(n, dtype=bool), [""] * n
        for group in groups:
            scored = self._zoo_scores(group.weights)
            if scored is None:
                continue
            z, names, shape_reason = scored
            largest, where = z.max(1)
            for i, d, k in zip(group.indices, largest.tolist(), where.tolist()):
                why = [f"{names[k]} lies {d:.1f} robust standard deviations from the zoo's median (flagged beyond "
                       f"{OUT_OF_ZOO:g})"] if d > OUT_OF_ZOO else []
                reasons[i] = "; ".join(why + ([shape_reason] if shape_reason else []))
                distance[i], outside[i] = d, bool(reasons[i])
        return ZooDistance(distance, outside, reasons)

    @torch.no_grad()
    def _zoo_scores(self, weights: list[torch.Tensor]) -> tuple[torch.Tensor, list[str], str] | None:
        """(N, K) robust z-scores of MLPs of one shape against the fitting zoo, the K statistics' names and why
        their shape lies outside it; ``None`` for an encoder that records no zoo statistics."""
        if hasattr(self.encoder, "zoo_scores"):
            return self.encoder.zoo_scores(weights)
        recorded = self.encoder.zoo_statistics() if hasattr(self.encoder, "zoo_statistics") else None
        if recorded is None:
            return None
        centre, spread = recorded
        names = [f"weight {STATISTIC_NAMES[k % STATISTICS_PER_LAYER]} of layer {k // STATISTICS_PER_LAYER}"
                 for k in range(len(centre))]
        return ((weight_statistics(weights) - centre) / spread).abs(), names, ""

    def save(self, path: str | os.PathLike) -> None:
        """Write state_dict and JSON metadata to `path`, atomically (temporary file, then rename)."""
        atomic_torch_save({"format": ENN_FORMAT, "metadata": json.dumps(self.metadata),
                           "state_dict": self.state_dict()}, path)

    @classmethod
    def pretrained(cls, name: str) -> ENN:
        """A shipped ENN, fitted on a zoo of MLPs trained any way (`pretrained_names`): no fitting, no download.

        ``ENN.pretrained("mnist-784-100-10")`` reads MNIST 784-100-10 MLPs; ``ENN.pretrained("mnist-any")`` reads
        MNIST MLPs of 1 to 3 hidden layers of any width (those of widths 16 to 256 inside its zoo).
        `pretrained_shapes` (and ``enn.shapes_read``) say which MLPs each reads. Its metadata's ``published``
        entry says which zoo and command made it, its ``quality`` how it ranked that zoo's held-out runs.
        """
        names = pretrained_names()
        if name not in names:
            raise ValueError(f"no shipped ENN named {name!r}; the package ships {names}")
        with resources.as_file(resources.files(PRETRAINED_PACKAGE) / "pretrained" / f"{name}.pt") as path:
            return cls.load(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ENN:
        """Read an ENN written by `save`; tensors and JSON only, no pickled objects."""
        payload = load_torch_payload(path, ENN_FORMAT, "ENN file", "ENN.save")
        try:
            enn = cls(json.loads(payload["metadata"]))
            enn.load_state_dict(payload["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as error:
            detail = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            raise ValueError(f"{path} has the ENN format tag but a damaged body ({detail}); "
                             "write it again with ENN.save") from error
        return enn.eval()


def pretrained_names() -> list[str]:
    """The names of the ENNs the package ships (`ENN.pretrained`), DATASET-WIDTHS such as ``digits-64-32-10``."""
    folder = resources.files(PRETRAINED_PACKAGE) / "pretrained"
    return sorted(p.name[: -len(".pt")] for p in folder.iterdir() if p.name.endswith(".pt")) if folder.is_dir() else []


def pretrained_name(mlp: MLPSpec, any_shape: bool = False) -> str:
    """What a shipped ENN for MLPs of `mlp` is called: ``digits-64-32-10``, or for `any_shape` ``digits-any``."""
    return f"{mlp.dataset}-any" if any_shape else f"{mlp.dataset}-{'-'.join(map(str, mlp.layer_sizes))}"


def pretrained_shapes() -> dict[str, str]:
    """Each shipped ENN's name and the MLPs it reads (`ENN.shapes_read`)."""
    return {name: ENN.pretrained(name).shapes_read for name in pretrained_names()}


OUT_OF_ZOO = 6.0
"""Robust standard deviations from the zoo's median beyond which an MLP is flagged: MLPs of the shipped zoos lie
within about 2 (trained or fresh), a N(0, 1)-weight MLP near 22 and a default init scaled x8 near 13 on the
digits ENN (docs/enn.md)."""


@dataclass(frozen=True)
class ShapeGroup:
    """MLPs of one shape among those handed to `ENN.predict`: their positions there, weights and biases."""

    indices: np.ndarray
    weights: list[torch.Tensor]
    biases: list[torch.Tensor] | None


@dataclass(frozen=True)
class ZooDistance:
    """Per MLP: its distance from the ENN's fitting zoo (`ENN.zoo_distance`), whether that flags it, and why."""

    distance: np.ndarray
    outside: np.ndarray
    reasons: list[str]


CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict")  # where training scripts keep the state_dict


def unwrapped_checkpoint(loaded: Any) -> Any:
    """The state_dict or module inside a checkpoint dict (``{"model": sd, "epoch": 3}``), else `loaded` itself."""
    if isinstance(loaded, Mapping) and not any(isinstance(v, torch.Tensor) for v in loaded.values()):
        for key in CHECKPOINT_KEYS:
            if isinstance(loaded.get(key), (Mapping, nn.Module)):
                return loaded[key]
    return loaded


def linear_layers(model: nn.Module | Mapping[str, torch.Tensor], what: str = "the model", biases: bool = False
                  ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """An MLP's weight matrices (`matrices_of`) and, with `biases`, its bias vectors (zeros for a layer without);
    a checkpoint dict holding the state_dict under ``state_dict`` or ``model`` is read through."""
    model = unwrapped_checkpoint(model)
    weights = matrices_of(model, what)
    if not biases:
        return weights, []
    if isinstance(model, nn.Module):
        found = [m.bias if m.bias is not None else torch.zeros(m.out_features)
                 for m in model.modules() if isinstance(m, nn.Linear)]
    else:
        by_name = {str(k): t for k, t in model.items()}
        found = []
        for key, w in zip([k for k, t in model.items() if str(k).endswith("weight") and getattr(t, "dim", lambda: 0)()
                           == 2], weights):
            bias = by_name.get(str(key)[: -len("weight")] + "bias")
            found.append(bias if bias is not None else torch.zeros(w.shape[0]))
    return weights, found


def matrices_of(model: nn.Module | Mapping[str, torch.Tensor], what: str = "the model") -> list[torch.Tensor]:
    """The weight matrices of an MLP: its `nn.Linear` weights in registration order, or the 2-D
    ``*.weight`` tensors of a state_dict in order."""
    if isinstance(model, nn.Module):
        matrices = [m.weight for m in model.modules() if isinstance(m, nn.Linear)]
    elif isinstance(model, Mapping):
        matrices = [t for k, t in model.items() if str(k).endswith("weight") and getattr(t, "dim", lambda: 0)() == 2]
    else:
        raise TypeError(f"{what} is a {type(model).__name__}; expected an nn.Module or a state_dict")
    if not matrices:
        if isinstance(model, Mapping) and any(isinstance(t, np.ndarray) for t in model.values()):
            raise ValueError(f"{what} is a state_dict of NumPy arrays; the ENN reads torch tensors: convert it with "
                             "{k: torch.from_numpy(v) for k, v in state_dict.items()}")
        raise ValueError(f"{what} has no nn.Linear layers (or 2-D '.weight' entries) for the ENN to read")
    return matrices


def enn_metadata(architecture: dict, mlp: MLPSpec, image: ImageSpec | None, source: dict) -> dict[str, Any]:
    """Metadata of a new, uncalibrated ENN for MLPs of `mlp` read as `image` (``None``: a ``stats`` encoder)."""
    return {
        "architecture": architecture,
        "target": mlp.to_dict(),
        "image": None if image is None else image.to_dict(mlp),
        "calibration": {"scale": 1.0, "offset": 0.0},
        "source": source,
    }


def resolve_enn(name_or_file: str | Path) -> ENN:
    """An ENN file, or the name of a shipped one (`ENN.pretrained`); a clear error naming both kinds otherwise."""
    path = Path(name_or_file)
    if path.is_file():
        return ENN.load(path)
    if str(name_or_file) in pretrained_names():
        return ENN.pretrained(str(name_or_file))
    raise FileNotFoundError(f"no ENN file at {name_or_file} and no shipped ENN of that name; shipped: "
                            f"{pretrained_names()}")
