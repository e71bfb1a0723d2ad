"""BatchNorm re-estimation: labels unused, on by default in publish, recorded in the card, refusable."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
import torch

from agents.app.cli import main as cli
from supernets.data import load_split
from supernets.foundation.errors import UsageError
from supernets.foundation.files import safe_load
from supernets.layers import SwitchableConv2d
from supernets.recalibrate import DEFAULT_IMAGES, RecalibrateArgs, before_after, recalibrate_bn
from supernets.registry import build_from_state, load_supernet
from supernets.report import correct_matrix, falling_accuracy_warnings
from supernets.resnet import ResNetConfig
from supernets.train import TrainArgs, train

TINY = ResNetConfig(
    stem_channels=4, stage_channels=(4, 8), blocks_per_stage=(1, 1), stage_strides=(1, 2), bit_choices=(2, 4, 8)
)
BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _train_pair(root, config: ResNetConfig, supernet_lr: float = 0.01, **common) -> tuple:
    float_final = train(TrainArgs(mode="float", out=str(root / "float"), lr=0.1, **common), config)
    supernet = TrainArgs(
        mode="supernet", out=str(root / "supernet"), warm_start=str(float_final), lr=supernet_lr, **common
    )
    return train(supernet, config).parent, float_final.parent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A float run and a supernet run of TINY on 128 images: seconds, enough to publish."""
    common = dict(epochs=1, batch_size=64, train_limit=128, eval_limit=64, threads=1, num_random=1)
    return _train_pair(tmp_path_factory.mktemp("runs"), TINY, **common)


def _publish(runs, out, *extra: str, limit: int = 200) -> int:
    sn, fl = runs
    args = ["supernet", "publish", "--run", str(sn), "--float-run", str(fl), "--name", "mine", "--out", str(out)]
    return cli([*args, "--split", "val", "--limit", str(limit), "--no-progress", *extra])


def _model(path) -> dict[str, torch.Tensor]:
    return safe_load(path)["model"]


def _uniform_accuracies(net, split) -> list[float]:
    configs = [[b] * net.num_switchable for b in net.bit_choices]
    return correct_matrix(net, split, configs, progress=False).mean(1).tolist()


@pytest.mark.slow
def test_an_under_trained_supernet_rises_with_bits_after_re_estimation_or_publish_warns(tmp_path, capsys):
    # One short epoch on 2,048 images at a high rate: uniform-4 falls about 11 points below uniform-2.
    config = dataclasses.replace(TINY, stem_channels=8, stage_channels=(8, 16), bit_choices=(2, 3, 4, 8))
    common = dict(epochs=1, batch_size=64, train_limit=2048, eval_limit=64, threads=1, num_random=1)
    runs = _train_pair(tmp_path, config, supernet_lr=0.05, **common)
    val = load_split("val")
    val = dataclasses.replace(val, images=val.images[:1000], labels=val.labels[:1000])
    before = _uniform_accuracies(build_from_state(safe_load(runs[0] / "final.pt"), "run"), val)
    rows = [{"config": f"uniform-{b}", "accuracy": a} for b, a in zip(config.bit_choices, before)]
    assert falling_accuracy_warnings({"split": "val", "rows": rows}), before  # the run is the bad case

    assert _publish(runs, tmp_path / "out", limit=1000) == 0
    err = capsys.readouterr().err
    card = json.loads((tmp_path / "out" / "mine.json").read_text())
    after = [r["accuracy"] for r in card["eval"]["rows"][: len(config.bit_choices)]]
    warnings = falling_accuracy_warnings(card["eval"])
    assert not warnings or all(line in err for line in warnings), (before, after, err)
    assert min(after) > min(before), (before, after)
    assert card["recalibrate_bn"]["images"] == DEFAULT_IMAGES


def test_re_estimation_reads_no_labels_and_changes_only_the_statistics():
    net = copy.deepcopy(load_supernet("resnet20-quarter-fashionmnist"))  # frozen, as loaded
    shipped = {k: v.clone() for k, v in net.state_dict().items()}
    train_split = load_split("train")
    shuffled = dataclasses.replace(
        train_split,
        labels=train_split.labels[torch.randperm(len(train_split), generator=torch.Generator().manual_seed(1))],
    )
    other = copy.deepcopy(net)
    done = recalibrate_bn(net, train_split, 96, batch_size=64)
    recalibrate_bn(other, shuffled, 96, batch_size=64)
    assert done == {"images": 96, "split": "train", "batch_size": 64, "seed": 0, "bit_choices": list(net.bit_choices)}
    new, same = net.state_dict(), other.state_dict()
    assert all(torch.equal(new[k], same[k]) for k in new)
    # Weights, steps and BN affine parameters are untouched; every BN's statistics are new (two equal batches).
    for k, v in new.items():
        if k.endswith("num_batches_tracked"):
            assert int(v) == 2, k
        elif k.endswith(BN_STATS):
            assert not torch.equal(v, shipped[k]), k
        else:
            assert torch.equal(v, shipped[k]), k
    assert net.frozen and not net.training  # frozen again, with caches of the new statistics
    for m in net.modules():
        assert not m.training
        if isinstance(m, SwitchableConv2d):
            assert all(bn.momentum == 0.1 for bn in m.bns)


def test_the_stem_keeps_the_statistics_of_the_widest_pass():
    net = copy.deepcopy(load_supernet("resnet20-quarter-fashionmnist")).unfreeze()
    train_split = load_split("train")
    stem_bn = net.stem.bns[0]
    seen: list[tuple[str, torch.Tensor]] = []

    def record(name: str):
        def hook(bn, inputs, output) -> None:
            if bn.training:  # being re-estimated: this batch's mean enters the average
                seen.append((name, inputs[0].mean((0, 2, 3))))

        return hook

    first = net.convs[0]
    hooks = [
        stem_bn.register_forward_hook(record("stem")),
        first.bns[first.slot(max(net.bit_choices))].register_forward_hook(record("widest")),
    ]
    recalibrate_bn(net, train_split, 100, batch_size=50)
    for h in hooks:
        h.remove()
    # The stem is re-estimated once, in the widest pass that comes first, over the two batches.
    assert [k for k, _ in seen] == ["stem", "widest", "stem", "widest"]
    stem_means = [m for k, m in seen if k == "stem"]
    assert torch.allclose(stem_bn.running_mean, (stem_means[0] + stem_means[1]) / 2, atol=1e-6)
    assert int(stem_bn.num_batches_tracked) == 2 and not net.frozen


def test_publish_re_estimates_by_default_and_zero_leaves_the_weights_as_trained(runs, tmp_path):
    trained = _model(runs[0] / "final.pt")
    assert _publish(runs, tmp_path / "zero", "--recalibrate-bn", "0") == 0
    card = json.loads((tmp_path / "zero" / "mine.json").read_text())
    assert card["recalibrate_bn"] == {"images": 0} and "re-estimated" not in card["recipe"]
    published = _model(tmp_path / "zero" / "mine.pt")
    assert published.keys() == trained.keys() and all(torch.equal(published[k], trained[k]) for k in trained)

    assert _publish(runs, tmp_path / "default") == 0
    card = json.loads((tmp_path / "default" / "mine.json").read_text())
    assert card["recalibrate_bn"] == {
        "images": DEFAULT_IMAGES,
        "split": "train",
        "batch_size": 256,
        "seed": 0,
        "bit_choices": [2, 4, 8],
    }
    assert f"re-estimated on {DEFAULT_IMAGES} training images" in card["recipe"]
    published = _model(tmp_path / "default" / "mine.pt")
    changed = {k for k in trained if not torch.equal(published[k], trained[k])}
    assert changed and all(k.endswith(BN_STATS) for k in changed)


def test_more_images_than_the_train_split_is_one_line_and_writes_nothing(runs, tmp_path, capsys):
    out = tmp_path / "out"
    assert _publish(runs, out, "--recalibrate-bn", "60000") == 2
    err = capsys.readouterr().err.strip()
    assert err == "abn-gym: error: --recalibrate-bn 60000: the train split has 55000 images; choose 1 to 55000"
    assert not any(out.glob("mine*"))
    assert _publish(runs, out, "--recalibrate-bn", "-1") == 2
    assert "or 0 to publish the run's" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--images 60000: the train split has 55000 images"):
        before_after(RecalibrateArgs(supernet="resnet20-quarter-fashionmnist", images=60000))
