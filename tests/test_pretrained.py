"""The ENNs the package ships: every one loads without fitting or download and ranks a small fresh zoo of MLPs
trained any way above a stated floor; a wrong name lists the shipped ones."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from agents.enn.network import ENN, pretrained_name, pretrained_names, pretrained_shapes
from agents.enn.zoo import ZooSpec, train_zoo
from agents.experiments.enn_ranking import enn_predictions

SHIPPED = ["digits-64-32-10", "fashion-mnist-784-100-10", "fashion-mnist-784-32-10", "mnist-784-100-10",
           "mnist-784-32-10"]
ANY_SHAPE = ["digits-any", "fashion-mnist-any", "mnist-any"]  # one per data set, for any width and depth
# Kendall tau on the fresh zoo's snapshots (0.78-0.83 when set); each ranks its own zoo's held-out runs above 0.7
FLOOR = 0.6


def test_the_package_ships_an_enn_for_every_shape_the_readme_uses() -> None:
    assert pretrained_names() == sorted(SHIPPED + ANY_SHAPE)
    assert pretrained_shapes()["mnist-784-32-10"] == "mnist 784-32-10"
    assert pretrained_shapes()["mnist-any"] == ("mnist MLPs (784 inputs, 10 classes) of 1 to 3 hidden layers of widths "
                                                "16 to 256")
    with pytest.raises(ValueError, match=r"no shipped ENN named 'cifar-mlp'; the package ships \['digits-64-32-10', "):
        ENN.pretrained("cifar-mlp")


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_enn_ranks_a_fresh_zoo_above_its_floor(name: str, data_dir) -> None:
    enn = ENN.pretrained(name)
    assert pretrained_name(enn.mlp_spec) == name and "command" in enn.metadata["published"]
    assert enn.metadata["quality"]["kendall_tau"] > 0.7  # what it scored on its own zoo's held-out runs
    fresh = ZooSpec(mlp=enn.mlp_spec, runs=16, steps=150, stages=(0.0, 0.2, 1.0), seed=99)  # runs no shipped ENN saw
    zoo = train_zoo(fresh, data_dir=str(data_dir), progress=False)
    every = zoo.run >= 0
    tau = stats.kendalltau(enn_predictions(enn, zoo, every), zoo.val_accuracy).statistic
    assert tau > FLOOR, f"{name}: Kendall tau {tau:.3f} on a fresh zoo"


@pytest.mark.parametrize("name", ANY_SHAPE)
def test_a_shipped_any_shape_enn_ranks_fresh_mlps_of_shapes_it_never_saw_above_its_floor(name: str, data_dir) -> None:
    from agents.enn.zoo_family import ZooFamilySpec, train_zoo_family

    enn = ENN.pretrained(name)
    assert enn.any_shape and pretrained_name(enn.mlp_spec, any_shape=True) == name
    assert enn.metadata["quality"]["kendall_tau"] > 0.7 and len(enn.metadata["quality"]["per_shape"]) == 8
    fresh = ZooFamilySpec(enn.mlp_spec.dataset, ((48,), (64, 32, 16)), runs=8, steps=150, seed=99)
    zoos = train_zoo_family(fresh, data_dir=str(data_dir), progress=False)
    predicted = np.concatenate([enn_predictions(enn, zoo, zoo.run >= 0) for zoo in zoos])
    tau = stats.kendalltau(predicted, np.concatenate([zoo.val_accuracy for zoo in zoos])).statistic
    assert tau > FLOOR, f"{name}: Kendall tau {tau:.3f} on fresh MLPs of two unseen shapes"


def test_the_guide_takes_a_shipped_enn_and_names_a_wrong_one(tmp_path) -> None:
    import yaml

    from agents.experiments.guide import run_guide

    setting = {"dataset": "digits", "hidden_sizes": [32], "lr": 0.05, "batch_size": 32, "epochs": 1,
               "guidance_weight": [0.1], "zoo_enn": {"pretrained": "digits-64-32-10"}}
    path = tmp_path / "guide.yaml"
    path.write_text(yaml.safe_dump({"seeds": [0], "rows": ["bp", "zoo-enn"], "settings": {"shipped": setting}}))
    report = run_guide(path, tmp_path / "out", wandb_mode="disabled")
    assert "| stats encoder, shipped (digits-64-32-10) |" in report
    path.write_text(yaml.safe_dump({"seeds": [0], "rows": ["bp", "zoo-enn"],
                                    "settings": {"shipped": {**setting, "zoo_enn": {"pretrained": "digits"}}}}))
    with pytest.raises(ValueError, match=r"zoo_enn: no shipped ENN named 'digits'; the package ships \["):
        run_guide(path, tmp_path / "again", wandb_mode="disabled")
