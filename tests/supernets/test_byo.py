"""Bring your own network: a tiny supernet trained, published into a folder, and named by its card."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.app.cli import main as cli
from supernets import report
from supernets.data import DatasetNotFoundError, data_spec, load_data, load_split
from supernets.families import load_arch_config
from supernets.foundation.errors import CheckpointError, UsageError
from supernets.foundation.files import sha256
from supernets.registry import CHECKPOINT_DIR, load_supernet, read_supernet_card
from supernets.resnet import ResNetConfig
from supernets.train import TrainArgs, default_out, train

TINY = ResNetConfig(
    stem_channels=4, stage_channels=(4, 8), blocks_per_stage=(1, 1), stage_strides=(1, 2), bit_choices=(2, 4, 8)
)
COMMON = dict(epochs=1, batch_size=64, train_limit=128, eval_limit=64, threads=1, num_random=1)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A float run and a supernet run of TINY, given as a Python ResNetConfig, with bit_choices (2, 4, 8)."""
    root = tmp_path_factory.mktemp("runs")
    float_final = train(TrainArgs(mode="float", out=str(root / "float"), lr=0.1, **COMMON), TINY)
    sn_final = train(
        TrainArgs(mode="supernet", out=str(root / "supernet"), warm_start=str(float_final), **COMMON), TINY
    )
    return sn_final.parent, float_final.parent


@pytest.fixture(scope="module")
def card(runs, tmp_path_factory):
    """``mine`` published into a folder of its own: the path of its card."""
    out = tmp_path_factory.mktemp("published")
    report.publish(*runs, name="mine", out=out, split="val", limit=300, progress=False)
    return out / "mine.json"


def _publish_cli(runs, *extra: str) -> int:
    sn, fl = runs
    return cli(
        ["supernet", "publish", "--run", str(sn), "--float-run", str(fl), "--limit", "200", "--no-progress", *extra]
    )


def _package_files() -> dict[str, str]:
    return {p.name: sha256(p) for p in sorted(CHECKPOINT_DIR.iterdir()) if p.is_file()}


def test_config_bit_choices_are_the_ones_trained(runs):
    state = torch.load(runs[0] / "final.pt", weights_only=True)
    assert state["config"]["bit_choices"] == [2, 4, 8]
    net = load_supernet("resnet20-fashionmnist", checkpoint=runs[0] / "final.pt")
    assert net.bit_choices == (2, 4, 8) and net.num_switchable == 4


def test_publish_without_name_fails_and_the_package_is_untouched(runs):
    before = _package_files()
    with pytest.raises(SystemExit) as exc:
        _publish_cli(runs, "--out", str(CHECKPOINT_DIR))
    assert exc.value.code != 0
    # Naming a shipped supernet does not replace it either: its files exist, and --force was not given.
    assert _publish_cli(runs, "--name", "resnet20-fashionmnist", "--out", str(CHECKPOINT_DIR)) == 2
    # Into the package, only the shipped names are publishable (a developer step).
    assert _publish_cli(runs, "--name", "mine", "--out", str(CHECKPOINT_DIR)) == 2
    assert _package_files() == before


def test_publish_refuses_an_existing_name_and_is_byte_reproducible(runs, tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _publish_cli(runs, "--name", "mine", "--out", str(a)) == 0
    first = {p.name: sha256(p) for p in a.iterdir()}
    assert _publish_cli(runs, "--name", "mine", "--out", str(a)) == 2
    assert "--force" in capsys.readouterr().err
    assert {p.name: sha256(p) for p in a.iterdir()} == first
    assert _publish_cli(runs, "--name", "mine", "--out", str(a), "--force") == 0
    assert _publish_cli(runs, "--name", "mine", "--out", str(b)) == 0
    assert sorted(first) == ["mine.float-reference.pt", "mine.json", "mine.pt"]
    for name in ("mine.pt", "mine.float-reference.pt"):
        assert sha256(a / name) == sha256(b / name) == first[name]
    card = json.loads((b / "mine.json").read_text())
    assert card["sha256"] == hashlib.sha256((b / "mine.pt").read_bytes()).hexdigest()
    assert card["name"] == "mine" and card["architecture"] == TINY.as_dict() and card["data"]["kind"] == "fashion-mnist"
    assert [r["config"] for r in card["eval"]["rows"][:3]] == ["uniform-2", "uniform-4", "uniform-8"]
    assert card["eval"]["n"] == 200 and card["eval"]["split"] == "test"
    assert (b / "mine.pt").stat().st_mode & 0o044 == 0o044  # readable like any other file, not 0600


def test_publish_checks_inputs_before_evaluating_and_leaves_nothing_on_failure(runs, tmp_path, monkeypatch):
    sn, fl = runs
    calls = []
    real = report.eval_table
    monkeypatch.setattr(report, "eval_table", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="did you mean to swap --run and --float-run"):
        report.publish(fl, sn, "mine", out)
    with pytest.raises(UsageError, match="no such run directory"):
        report.publish(sn, tmp_path / "missing", "mine", out)
    with pytest.raises(UsageError, match="needs --name"):
        report.publish(sn, fl, None, out)
    assert calls == []

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(report, "float_accuracy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.publish(sn, fl, "mine", out, limit=50, progress=False)
    assert calls == [1] and list(out.iterdir()) == []


def test_env_on_a_card_passes_both_checkers(card):
    import gymnasium as gym
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make("ABN-ResNet-v0", supernet=str(card))
    assert env.action_space.n == 3 and env.unwrapped.num_layers == 4
    check_env(env.unwrapped)
    sb3_check_env(env.unwrapped)


def test_a_changed_checkpoint_is_reported_at_make_with_a_fix_for_the_users_own_file(card, tmp_path):
    import gymnasium as gym

    for f in card.parent.glob("mine*"):
        shutil.copy(f, tmp_path / f.name)
    data = bytearray((tmp_path / "mine.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "mine.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="publish it again") as exc:
        gym.make("ABN-ResNet-v0", supernet=str(tmp_path / "mine.json"))
    assert "git checkout" not in str(exc.value)
    with pytest.raises(CheckpointError, match="publish it again"):
        load_supernet(tmp_path / "mine.json")


def test_bench_on_a_card_names_it_and_validates(card, tmp_path, capsys):
    out = tmp_path / "bench"
    args = ["bench", "--supernet", str(card), "--episodes", "50", "--no-progress", "--json", "--out", str(out)]
    assert cli([*args, "--agents", "fixed-2,fixed-8"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["supernet"] == "mine" and [r["agent"] for r in result["rows"]] == ["fixed-2", "fixed-8"]
    assert json.loads((out / "results.json").read_text())["supernet"] == "mine"
    assert cli(["validate", str(out / "results.json")]) == 0
    assert capsys.readouterr().out.startswith("OK")


@pytest.mark.slow
def test_bench_reuses_a_saved_static_search_and_counts_its_own(card, tmp_path, capsys):
    args = ["bench", "--supernet", str(card), "--episodes", "50", "--no-progress", "--json", "--out", str(tmp_path)]

    # No saved search for the card: the bench says it searches, and charges the time to the static row.
    assert cli([*args, "--agents", "static-4"]) == 0
    captured = capsys.readouterr()
    assert "searching the static front" in captured.err
    searched = json.loads(captured.out)["rows"][0]["wall_s"]
    from agents.controllers.registry import _STATIC_CACHE

    search_s = [v["search_seconds"] for k, v in _STATIC_CACHE.items() if k[0] == str(card) and k[3] is None]
    assert len(search_s) == 1 and searched >= search_s[0] > 0

    saved = tmp_path / "static"
    assert cli(["static-search", "--supernet", str(card), "--limit", "300", "--out", str(saved), "--no-progress"]) == 0
    capsys.readouterr()
    assert cli([*args, "--agents", "static-4", "--static-from", str(saved)]) == 0
    captured = capsys.readouterr()
    assert "searching" not in captured.err
    assert json.loads(captured.out)["rows"][0]["wall_s"] < searched
    assert cli([*args, "--agents", "static-4", "--static-from", str(tmp_path)]) == 2
    assert "static-search --supernet" in capsys.readouterr().err


def test_bench_env_from_a_module_that_registers_it(card, tmp_path, monkeypatch, capsys):
    module = tmp_path / "byo_env_module.py"
    module.write_text(
        textwrap.dedent(
            f"""
            import gymnasium

            gymnasium.register(
                "ABN-ByoTest-v0",
                entry_point="abn_gym.env:ABNEnv",
                vector_entry_point="abn_gym.vector:ABNVectorEnv",
                kwargs={{"supernet": {str(card)!r}, "cost_coef": 0.1}},
            )
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    args = ["bench", "--env", "byo_env_module:ABN-ByoTest-v0", "--agents", "fixed-4", "--episodes", "20"]
    assert cli([*args, "--no-progress", "--json", "--out", str(tmp_path / "b")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["supernet"] == "mine" and result["env"] == "byo_env_module:ABN-ByoTest-v0"
    sys.modules.pop("byo_env_module", None)


def test_supernet_eval_and_tables_take_a_card(card, runs, capsys):
    assert cli(["supernet", "eval", "--supernet", str(card), "--split", "val", "--limit", "300", "--no-progress"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("mine on val (300 images)")
    # The card's own table was measured on the same split and images: the full-precision row is shown.
    assert "full-precision reference" in shown
    assert cli(["supernet", "eval", "--checkpoint", str(runs[0] / "final.pt"), "--limit", "50", "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("supernet/final.pt on test")

    from abn_gym.tables import main as tables

    tables(["--supernet", str(card), "--split", "val", "--limit", "100", "--cost-coef", "0.5"])
    out = capsys.readouterr().out
    assert "| uniform bits | 2 | 4 | 8 |" in out and "at cost_coef=0.5:" in out


def test_tables_explain_in_one_line_when_no_coefficient_makes_the_middle_best():
    from abn_gym.tables import format_report

    # Uniform-4 is less accurate than the cheaper uniform-2: no price makes it the best.
    table = {
        2: {"accuracy": 0.90, "bitops_fraction": 0.1, "return": 0.0},
        4: {"accuracy": 0.89, "bitops_fraction": 0.3, "return": 0.0},
        8: {"accuracy": 0.95, "bitops_fraction": 1.0, "return": 0.0},
    }
    text = format_report(table, 0.07)
    assert text.splitlines()[-1].startswith("no cost_coef makes uniform-4 the best")
    table[4]["accuracy"] = 0.93
    assert "cost_coef making uniform-4 the best: 0.0286 to 0.1500" in format_report(table, 0.07)


def test_arch_config_files_json_and_toml(tmp_path):
    (tmp_path / "a.json").write_text(
        json.dumps({"stem_channels": 4, "stage_channels": [4, 8], "blocks_per_stage": [1, 1], "stage_strides": [1, 2]})
    )
    (tmp_path / "a.toml").write_text(
        "stem_channels = 4\nstage_channels = [4, 8]\nblocks_per_stage = [1, 1]\nstage_strides = [1, 2]\n"
    )
    assert load_arch_config(tmp_path / "a.json") == load_arch_config(tmp_path / "a.toml")
    assert load_arch_config(tmp_path / "a.toml").stage_channels == (4, 8)
    (tmp_path / "bad.json").write_text(json.dumps({"stage_chanels": [4]}))
    with pytest.raises(UsageError, match="unknown fields \\['stage_chanels'\\]"):
        load_arch_config(tmp_path / "bad.json")
    (tmp_path / "short.json").write_text(json.dumps({"stage_channels": [4, 8], "blocks_per_stage": [1]}))
    with pytest.raises(UsageError, match="one value per stage"):
        load_arch_config(tmp_path / "short.json")
    assert default_out(TrainArgs(mode="float", arch="resnet20-w4")) == Path("runs/resnet20-w4-float")
    assert default_out(TrainArgs(arch_config=str(tmp_path / "a.toml"))) == Path("runs/a-supernet")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_32x32_images_under_fashion_mnist_names_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 10)):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 32, 32)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    with pytest.raises(DatasetNotFoundError, match="32x32 images under Fashion-MNIST's file names"):
        load_split("test", tmp_path)


def test_the_3_channel_resnet18_is_refused_on_grey_data_and_takes_a_grey_stem(test_split):
    from supernets.convert import from_torchvision_resnet18

    torch.manual_seed(0)
    few = test_split.__class__("test", test_split.images[:8], test_split.labels[:8], test_split.source)
    with pytest.raises(UsageError, match=r"takes 3x224x224 inputs .* holds 1x28x28 images"):
        report.eval_table(from_torchvision_resnet18(bit_choices=(2,)), few, "r18", progress=False)
    with pytest.raises(UsageError, match="grey_stem=True"):
        from_torchvision_resnet18(in_channels=1, input_size=28)
    net = from_torchvision_resnet18(in_channels=1, input_size=28, grey_stem=True, num_classes=10, bit_choices=(2, 8))
    net.freeze()
    table = report.eval_table(net, few, "r18-grey", num_random=1, progress=False)
    assert table["n"] == 8 and net.layer_specs[0].h_out == 28


def test_an_npz_dataset_trains_and_its_card_records_it(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 128), ("val", 32), ("test", 32)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 3, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 3, n)
    np.savez(tmp_path / "data.npz", **arrays)
    spec = data_spec(tmp_path / "data.npz")
    assert (spec.channels, spec.size, spec.num_classes) == (3, 16, 3)
    expected = arrays["train_images"].reshape(128, 3, -1).transpose(1, 0, 2).reshape(3, -1) / 255.0
    assert np.allclose(spec.mean, expected.mean(1)) and np.allclose(spec.std, expected.std(1))
    val = load_data(spec, "val")
    assert torch.allclose(val.inputs(slice(0, 2))[:, 1], (val.images[:2, 1].float() / 255 - spec.mean[1]) / spec.std[1])

    config = ResNetConfig(
        in_channels=3,
        input_size=16,
        num_classes=3,
        stem_channels=4,
        stage_channels=(4,),
        blocks_per_stage=(1,),
        stage_strides=(1,),
        bit_choices=(2, 8),
    )
    data = str(tmp_path / "data.npz")
    common = dict(epochs=1, batch_size=64, eval_limit=32, threads=1, num_random=1, data=data)
    with pytest.raises(UsageError, match="takes 1x28x28 inputs"):
        train(TrainArgs(mode="float", out=str(tmp_path / "x"), **common))
    fl = train(TrainArgs(mode="float", out=str(tmp_path / "f"), **common), config)
    sn = train(TrainArgs(mode="supernet", out=str(tmp_path / "s"), warm_start=str(fl), **common), config)
    card = report.publish(sn.parent, fl.parent, "rgb", tmp_path / "pub", split="val", progress=False)
    assert card["data"]["kind"] == "npz" and card["data"]["num_classes"] == 3
    assert card["data"]["sha256"] == sha256(tmp_path / "data.npz") and card["eval"]["n"] == 32
    assert read_supernet_card(tmp_path / "pub" / "rgb.json")["data"]["mean"] == list(spec.mean)


def test_saving_the_same_state_under_other_names_gives_the_same_bytes(tmp_path):
    from supernets.foundation.files import atomic_torch_save

    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "config": TINY.as_dict(), "kind": "supernet"}
    atomic_torch_save(state, tmp_path / "a.pt")
    atomic_torch_save(state, tmp_path / "other-name.pt")
    # A plain torch.save names the archive's folder after the file, so its bytes depend on the name.
    torch.save(state, tmp_path / "plain.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other-name.pt").read_bytes()
    assert (tmp_path / "plain.pt").read_bytes() != (tmp_path / "a.pt").read_bytes()
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["model"]["w"], state["model"]["w"])
