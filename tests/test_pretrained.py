"""The ENNs the package ships: every one loads without fitting or download and ranks a small fresh zoo of MLPs
trained any way above a stated floor; a wrong name lists the shipped ones."""

from __future__ import annotations

import pytest
from scipy import stats

from agents.enn.network import ENN, pretrained_name, pretrained_names
from agents.enn.zoo import ZooSpec, train_zoo
from agents.experiments.enn_ranking import enn_predictions

SHIPPED = ["digits-64-32-10", "fashion-mnist-784-100-10", "fashion-mnist-784-32-10", "mnist-784-100-10",
           "mnist-784-32-10"]
# Kendall tau on the fresh zoo's snapshots (0.78-0.83 when set); each ranks its own zoo's held-out runs above 0.7
FLOOR = 0.6


def test_the_package_ships_an_enn_for_every_shape_the_readme_uses() -> None:
    assert pretrained_names() == SHIPPED
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
