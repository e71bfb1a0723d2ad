import numpy as np
import pytest
import torch

from supernets import data
from supernets.foundation.errors import UsageError


def test_split_sizes_disjoint_and_fixed():
    train, val = data.split_indices()
    assert len(train) == 55_000 and len(val) == 5_000
    assert not set(train) & set(val)
    assert np.array_equal(data.split_indices()[1], val)
    s_val = data.load_split("val")
    assert len(s_val) == 5_000 and s_val.images.shape == (5_000, 1, 28, 28)
    assert len(data.load_split("test")) == 10_000
    assert len(data.load_split("train")) == 55_000


def test_real_files_look_like_fashion_mnist():
    test = data.load_split("test")
    assert test.images.dtype == torch.uint8 and test.images.shape == (10_000, 1, 28, 28)
    assert int(test.images.min()) == 0 and int(test.images.max()) == 255  # raw grey levels, not yet normalised
    counts = np.bincount(test.labels.numpy(), minlength=10)
    assert (counts == 1000).all()
    x = test.inputs(slice(0, 1000))
    assert abs(float(x.mean())) < 0.2 and 0.8 < float(x.std()) < 1.2


def test_explicit_dir_wins_and_missing_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("ABN_DATA_DIR", str(tmp_path))
    with pytest.raises(data.DatasetNotFoundError, match=r"t10k-images-idx3-ubyte\.gz"):
        data.find_data_dir()


def test_nothing_found_explains_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.delenv("ABN_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(data.DatasetNotFoundError, match=r"apt-get install -y dataset-fashion-mnist"):
        data.find_data_dir(download=False)


def test_unknown_split():
    with pytest.raises(ValueError, match="choose one of"):
        data.load_split("holdout")


def test_every_image_count_option_gives_the_same_one_line_error(capsys, tmp_path):
    from agents.app.cli import main as cli
    from supernets.data import check_count

    with pytest.raises(UsageError, match=r"^--limit 11: the val split has 10 images; choose 1 to 10$"):
        check_count(11, "val", 10, "--limit")
    check_count(None, "val", 10, "--limit")  # None: the whole split
    commands = [
        (
            ["supernet", "eval", "--supernet", "resnet20-quarter-fashionmnist", "--limit", "10001", "--no-progress"],
            "--limit 10001: the test split has 10000 images; choose 1 to 10000",
        ),
        (
            ["static-search", "--supernet", "resnet20-quarter-fashionmnist", "--limit", "5001", "--out", str(tmp_path)],
            "--limit 5001: the val split has 5000 images; choose 1 to 5000",
        ),
        (
            ["supernet", "train", "--mode", "float", "--train-limit", "55001", "--out", str(tmp_path / "run")],
            "--train-limit 55001: the train split has 55000 images; choose 1 to 55000",
        ),
    ]
    for argv, message in commands:
        assert cli(argv) == 2
        assert capsys.readouterr().err.strip() == f"abn-gym: error: {message}"
    assert not (tmp_path / "run").exists() and not list(tmp_path.iterdir())
