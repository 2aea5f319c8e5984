"""The weight image: layout, normalisation, differentiability, and the action's inverse."""

from __future__ import annotations

import pytest
import torch

from gi_envs.batched_mlp import BatchedMLP
from gi_envs.weight_image import image_layout, upsample_action, weight_image
from tests.floats import assert_float32_close


def test_layout_of_the_default_digits_mlp() -> None:
    layout = image_layout(((32, 64), (10, 32)), 0.15)
    assert layout.channel_sizes == ((5, 10), (2, 5))
    assert layout.shape == (2, 5, 10)
    assert image_layout(((100, 784), (10, 100)), 0.15).shape == (2, 15, 118)
    assert image_layout(((100, 784), (10, 100)), 1.0).shape == (2, 100, 784)


def test_image_is_area_pooled_and_zero_padded() -> None:
    w1 = torch.arange(32 * 64, dtype=torch.float32).view(32, 64)
    w2 = torch.ones(10, 32)
    image = weight_image([w1, w2], resolution=0.5)
    layout = image_layout(((32, 64), (10, 32)), 0.5)
    assert image.shape == (2, 16, 32)
    expected = w1[:2, :2].mean() * layout.scales[0]
    assert torch.allclose(image[0, 0, 0], expected)
    assert torch.all(image[1, 5:, :] == 0) and torch.all(image[1, :, 16:] == 0)
    assert torch.allclose(image[1, :5, :16], torch.full((5, 16), layout.scales[1]))


@pytest.mark.parametrize("init", ["default", "he"])
def test_per_layer_normalisation_gives_layers_one_scale(init: str) -> None:
    mlp = BatchedMLP((784, 300, 100, 10), n_models=8)
    for i in range(8):
        mlp.initialize(i, torch.Generator().manual_seed(i), init)
    image = weight_image([w.detach() for w in mlp.weights], 0.15)
    layout = image_layout(tuple(mlp.layer_shapes), 0.15)
    expected = (1 / 3) ** 0.5 if init == "default" else 2**0.5
    for c, (h, w) in enumerate(layout.channel_sizes):
        std = float(image[:, c, :h, :w].std())
        assert abs(std - expected) < 0.25 * expected, (c, std)


def test_gradients_flow_from_the_image_to_every_weight() -> None:
    mlp = BatchedMLP((64, 32, 10), n_models=3)
    for i in range(3):
        mlp.initialize(i, torch.Generator().manual_seed(i))
    image = weight_image(mlp.weights, 0.15)
    assert image.shape == (3, 2, 5, 10)
    (image**2).sum().backward()
    for w in mlp.weights:
        assert w.grad is not None and torch.isfinite(w.grad).all()
        assert (w.grad != 0).float().mean() > 0.99


def test_bad_resolution_is_rejected() -> None:
    with pytest.raises(ValueError, match="resolution"):
        image_layout(((32, 64),), 0.0)
    with pytest.raises(ValueError, match="resolution"):
        image_layout(((32, 64),), 1.5)


def test_action_grid_upsamples_blockwise_to_each_matrix() -> None:
    grid = torch.arange(2 * 2 * 2, dtype=torch.float32).view(1, 2, 2, 2)
    up = upsample_action(grid, [(32, 64), (10, 32)])
    assert [tuple(u.shape) for u in up] == [(1, 32, 64), (1, 10, 32)]
    assert torch.all(up[0][0, :16, :32] == 0) and torch.all(up[0][0, 16:, 32:] == 3)
    assert torch.all(up[1][0, :5, 16:] == 5)
    with pytest.raises(ValueError, match="does not fit"):
        upsample_action(grid, [(32, 64)])


def test_rms_channels_keep_the_magnitude_that_averaging_cancels() -> None:
    torch.manual_seed(0)
    w = torch.sign(torch.randn(40, 80)) * 0.1  # random signs, one magnitude
    image = weight_image([w], resolution=0.1, stats=("mean", "rms"))
    assert image.shape == (2, 4, 8)
    assert_float32_close(image[1], torch.full((4, 8), 0.1 * 80**0.5))  # rms: the magnitude, everywhere
    assert float(image[0].std()) > 0.1  # the signed mean varies with the signs
    w.requires_grad_(True)
    weight_image([w], 0.1, ("rms",)).sum().backward()
    assert torch.isfinite(w.grad).all() and (w.grad != 0).all()
    with pytest.raises(ValueError, match="stats"):
        weight_image([w], 0.1, ("median",))
