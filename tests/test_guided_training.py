"""The paper's comparison (`guide`): rows, seeds, tables, the ENN's shape check, config errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from agents.enn.supervised import untrained_supervised_enn
from agents.experiments.guide import GUIDE_ROWS, load_guide_config, run_guide, train_row

TINY = {"dataset": "digits", "hidden_sizes": [16], "lr": 0.05, "batch_size": 32, "epochs": 1,
        "guidance_weight": [0.5, 2.0], "guidance_every": 2, "enn": {"supervised_env_steps": 200}}


PAPER_ROWS = ["bp", "l1", "he", "enn", "enn+he"]


def write_config(tmp_path: Path, **changes) -> Path:
    raw = {"seeds": [0, 1], "rows": PAPER_ROWS, "settings": {"tiny": {**TINY, **changes}}}
    path = tmp_path / "guide.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_short_guide_run_on_digits_writes_its_table(tmp_path: Path) -> None:
    report = run_guide(write_config(tmp_path), tmp_path / "out", wandb_mode="disabled")
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert len(results) == 5 * 2 and set(results.row) == set(PAPER_ROWS)
    assert results.test_accuracy.between(0.5, 1.0).all()  # one epoch of digits already learns
    for row in PAPER_ROWS:
        assert f"| {GUIDE_ROWS[row].label} |" in report
    assert "Welch p vs BP" in report and "Kendall tau" in report
    assert "| image encoder, supervised on env episodes |" in report  # the ENN column says what each row's ENN is
    assert "Guidance weight" in report and "chosen on validation accuracy (%) of seeds [1000, 1001, 1002]:" in report
    assert " 0.5: " in report and " 2: " in report  # every weight of the grid was tried
    for png in ["test_accuracy.png", "guidance_ratio_tiny.png", "weight_norms_tiny_layer0.png"]:
        assert (tmp_path / "out" / png).stat().st_size > 1000
    bp = results[results.row == "bp"].set_index("seed")
    he = results[results.row == "he"].set_index("seed")
    assert not bp.test_accuracy.equals(he.test_accuracy)  # rows really differ in what they vary


def test_rows_share_seeds_and_l1_changes_training(tmp_path: Path) -> None:
    settings, _, _ = load_guide_config(write_config(tmp_path, l1=0.01))
    bp = train_row(settings[0], "bp", [3, 4], None)
    again = train_row(settings[0], "bp", [3, 4], None)
    l1 = train_row(settings[0], "l1", [3, 4], None)
    pd.testing.assert_frame_equal(bp.per_seed, again.per_seed)  # same seeds, same numbers
    assert not bp.per_seed.train_accuracy.equals(l1.per_seed.train_accuracy)


def test_enn_rows_check_the_enn_and_configs_fail_clearly(tmp_path: Path) -> None:
    settings, _, _ = load_guide_config(write_config(tmp_path))
    wrong = untrained_supervised_enn({"hidden_sizes": (8,)})
    with pytest.raises(ValueError, match="made for an MLP with weight shapes"):
        train_row(settings[0], "enn", [0], wrong)
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]"):
        load_guide_config(write_config(tmp_path, epoch=3))
    bad_rows = tmp_path / "rows.yaml"
    bad_rows.write_text(yaml.safe_dump({"rows": ["bp", "adam"], "settings": {"r": TINY}}))
    with pytest.raises(ValueError, match=r"unknown row/trainer\(s\) \['adam'\]; known: \[.*'rmsgd', 'lfp'\]"):
        load_guide_config(bad_rows)
    with pytest.raises(ValueError, match="dataset='cifar'"):
        load_guide_config(write_config(tmp_path, dataset="cifar"))


@pytest.mark.parametrize("stats", [("mean", "rms"), ("rms",)])
def test_a_setting_guided_by_an_enn_of_another_image_reads_that_image(tmp_path: Path, stats: tuple) -> None:
    enn_path = tmp_path / "enn.pt"
    untrained_supervised_enn({"hidden_sizes": (16,), "image_stats": stats}).save(enn_path)
    config = write_config(tmp_path, enn={"path": str(enn_path)}, guidance_weight=0.5, image_stats=["mean"])
    report = run_guide(config, tmp_path / "out", wandb_mode="disabled", rows=["bp", "enn"])
    assert "| ENN-guided |" in report and "Kendall tau" in report  # quality snapshots drawn as the ENN's image
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert results.test_accuracy.between(0.5, 1.0).all()


def test_the_weight_search_extends_its_grid_and_says_when_it_still_hits_an_end() -> None:
    from types import SimpleNamespace

    from agents.experiments.guide.rows import search_grid

    def run_peaking_at(peak: float):
        return lambda w: SimpleNamespace(per_seed=pd.DataFrame({"val_accuracy": [1.0 - abs(w - peak)]}))

    inside = search_grid([0.1, 1.0, 10.0], run_peaking_at(1.0))
    assert inside.best == 1.0 and inside.at_edge == "" and sorted(inside.scores) == [0.1, 1.0, 10.0]
    beyond = search_grid([0.1, 1.0, 10.0], run_peaking_at(100.0))  # extended twice, x10 each time
    assert beyond.best == 100.0 and beyond.at_edge == "" and sorted(beyond.scores)[-2:] == [100.0, 1000.0]
    far = search_grid([0.1, 1.0], run_peaking_at(1e6))
    assert far.best == 100.0 and far.at_edge == "high" and "high end of the grid even after extending" in \
        far.describe("Guidance weight")
    zero = search_grid([0.0, 1.0], run_peaking_at(-5.0))  # no guidance at all wins: nothing below zero to try
    assert zero.best == 0.0 and zero.at_edge == "low" and sorted(zero.scores) == [0.0, 1.0]


def test_guide_runs_with_a_statistics_enn_file_a_zoo_enn_and_an_enn_shaped_init(tmp_path: Path) -> None:
    from agents.enn.fit import fit_zoo_enn
    from agents.enn.zoo import ZooSpec, train_zoo
    from gi_envs.spec import MLPSpec

    zoo = train_zoo(ZooSpec(mlp=MLPSpec("digits", (16,)), runs=24, steps=200, seed=1), progress=False)
    zoo.save(tmp_path / "zoo.npz")
    fit_zoo_enn(zoo, "stats", epochs=20, progress=False).save(tmp_path / "stats.pt")
    config = write_config(tmp_path, enn={"path": str(tmp_path / "stats.pt")}, guidance_weight=0.5,
                          zoo_enn={"zoo": str(tmp_path / "zoo.npz"), "encoder": "stats"},
                          init_enn={"zoo": str(tmp_path / "zoo.npz"), "encoder": "stats", "target": "final"},
                          init_steps=5, init_step_size=[0.1])
    rows = ["bp", "enn", "zoo-enn", "zoo-enn+he", "enn-init"]
    report = run_guide(config, tmp_path / "out", wandb_mode="disabled", rows=rows)
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results.row) == set(rows) and results.test_accuracy.between(0.3, 1.0).all()
    assert "ENN `enn` (stats encoder, zoo)" in report and "ENN `init_enn` (stats encoder, zoo)" in report
    assert "| ENN-shaped init, then BP |" in report and "| zoo ENN-guided + He |" in report
    bp = results[results.row == "bp"].set_index("seed").test_accuracy
    assert not bp.equals(results[results.row == "enn-init"].set_index("seed").test_accuracy)
    for name in ["init_enn_tiny.pt", "zoo_enn_tiny.pt", "weight_norms_tiny_layer1.csv"]:
        assert (tmp_path / "out" / name).is_file()
    bad = write_config(tmp_path, zoo_enn={"zoo": str(tmp_path / "zoo.npz"), "encoder": "cnn"})
    with pytest.raises(ValueError, match=r"zoo_enn=.* is not allowed; expected one of \{path: FILE\}"):
        load_guide_config(bad)


def test_adding_a_row_is_one_edit_it_shows_in_the_help_and_in_a_run(tmp_path: Path, capsys) -> None:
    from agents.cli import main
    from agents.experiments.guide import GuideRow, register_row
    from agents.experiments.guide.registry import GUIDE_ROWS

    row = register_row(GuideRow("l1+he", "L1 with He init", init="he", l1=True))  # the one edit
    try:
        with pytest.raises(SystemExit):
            main(["guide", "--help"])
        assert "l1+he" in capsys.readouterr().out
        report = run_guide(write_config(tmp_path, l1=0.01), tmp_path / "out", wandb_mode="disabled",
                           rows=["bp", "l1+he"])
        results = pd.read_csv(tmp_path / "out" / "results.csv")
        assert "| L1 with He init |" in report and set(results.row) == {"bp", "l1+he"}
        bp, new = (results[results.row == r].set_index("seed").test_accuracy for r in ("bp", "l1+he"))
        assert not bp.equals(new) and new.between(0.5, 1.0).all()
    finally:
        del GUIDE_ROWS[row.name]
