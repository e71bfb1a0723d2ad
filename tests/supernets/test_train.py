"""The trainer resumes exactly where an interruption left it."""

import pytest
import torch

from supernets import train as train_mod
from supernets.data import normalize
from supernets.train import AUGMENTATIONS, TrainArgs, augment, augmentation, lr_at, train


def test_augment_is_seeded_and_shape_preserving(test_split):
    imgs = test_split.images[:8]
    a = augment(imgs, torch.Generator().manual_seed(1))
    b = augment(imgs, torch.Generator().manual_seed(1))
    assert a.shape == (8, 1, 28, 28) and torch.equal(a, b)


@pytest.mark.parametrize("kind", AUGMENTATIONS)
def test_each_augmentation_is_its_crop_and_flip_by_slicing(test_split, kind):
    imgs = test_split.images[:16]
    got = augment(imgs, torch.Generator().manual_seed(5), kind=kind)
    if kind == "none":
        assert torch.equal(got, normalize(imgs))
        return
    if kind == "flip":
        flips = torch.rand(len(imgs), generator=torch.Generator().manual_seed(5)) < 0.5
        for i, img in enumerate(imgs):
            assert torch.equal(got[i], normalize((img.flip(-1) if flips[i] else img)[None])[0]), i
        return
    # The same draws, by hand: the shift (dy, dx) of each image in its 2-pixel zero padding, then the flips.
    gen = torch.Generator().manual_seed(5)
    n = len(imgs)
    dy, dx = torch.randint(0, 5, (n,), generator=gen), torch.randint(0, 5, (n,), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5 if kind == "flip-crop" else torch.zeros(n, dtype=torch.bool)
    padded = torch.nn.functional.pad(imgs, (2, 2, 2, 2))
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + 28, dx[i] : dx[i] + 28]
        assert torch.equal(got[i], normalize((crop.flip(-1) if flips[i] else crop)[None])[0]), i
    assert kind == "crop" or 0 < int(flips.sum()) < n


def test_augment_takes_the_issue_s_spelling_and_names_bad_values():
    assert augmentation("flip,crop") == augmentation("crop,flip") == augmentation("flip-crop") == "flip-crop"
    assert augmentation("crop") == "crop" and augmentation("none") == "none" and augmentation("flip") == "flip"
    from supernets.foundation.errors import UsageError

    with pytest.raises(UsageError, match="--augment 'rotate'"):
        augmentation("rotate")
    with pytest.raises(UsageError, match="--augment 'none,crop'"):
        augmentation("none,crop")


def test_a_run_resumes_only_with_its_own_augmentation(tmp_path):
    from supernets.foundation.errors import UsageError

    args = TrainArgs(mode="float", epochs=1, batch_size=32, train_limit=64, eval_limit=32, out=str(tmp_path), threads=1)
    torch.save({"args": {"mode": "float", "augment": "crop"}}, tmp_path / "last.pt")
    with pytest.raises(UsageError, match=r"trained with --augment crop; resume it with that, or use another --out"):
        train(args)


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 0.1) for s in range(100)]
    assert lrs[0] < lrs[2] <= 0.1 + 1e-12 and lrs[-1] < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["float", "supernet"])
def test_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch, mode):
    common = dict(
        mode=mode,
        epochs=1,
        batch_size=32,
        train_limit=160,
        eval_limit=64,
        ckpt_every=2,
        seed=3,
        lr=0.05,
        num_random=1,
        threads=1,
    )
    full = train(TrainArgs(out=str(tmp_path / "full"), **common))

    calls = {"n": 0}
    real_step = torch.optim.SGD.step

    def flaky_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.optim.SGD, "step", flaky_step)
    with pytest.raises(KeyboardInterrupt):
        train(TrainArgs(out=str(tmp_path / "resumed"), **common))
    monkeypatch.setattr(torch.optim.SGD, "step", real_step)
    assert (tmp_path / "resumed" / "last.pt").exists()
    resumed = train(TrainArgs(out=str(tmp_path / "resumed"), **common))
    a = torch.load(full, weights_only=True)["model"]
    b = torch.load(resumed, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert train_mod.Path(tmp_path / "resumed" / "log.csv").read_text().count("\n") == 2


def test_float_warm_start_loads_the_checkpoint_and_refuses_others(tmp_path):
    from supernets.families import architecture
    from supernets.float_net import FloatSupernet
    from supernets.foundation.errors import UsageError
    from supernets.foundation.files import atomic_torch_save
    from supernets.train import build_model

    src = FloatSupernet(architecture("resnet20-w4"))
    with torch.no_grad():
        for p in src.parameters():
            p.normal_()  # far from any fresh initialisation
    ckpt = tmp_path / "final.pt"
    atomic_torch_save({"model": src.state_dict(), "args": {"mode": "float", "arch": "resnet20-w4"}}, ckpt)
    got = build_model(TrainArgs(mode="float", arch="resnet20-w4", warm_start=str(ckpt))).state_dict()
    for k, v in src.state_dict().items():
        assert torch.equal(got[k], v), k
    with pytest.raises(UsageError, match="--arch"):
        build_model(TrainArgs(mode="float", arch="resnet20", warm_start=str(ckpt)))
    atomic_torch_save({"model": src.state_dict(), "args": {"mode": "supernet", "arch": "resnet20-w4"}}, ckpt)
    with pytest.raises(UsageError, match="not a float run"):
        build_model(TrainArgs(mode="float", arch="resnet20-w4", warm_start=str(ckpt)))


def test_a_torch_module_as_config_is_refused_with_the_way_in(tmp_path):
    from supernets.foundation.errors import UsageError

    class MyNet(torch.nn.Module):
        """A user's own module: what train(config=...) must refuse, whatever its layers."""

    with pytest.raises(UsageError, match=r"config= takes an architecture config .*, not a MyNet object"):
        train(TrainArgs(out=str(tmp_path / "run")), config=MyNet())
    assert not (tmp_path / "run").exists()
