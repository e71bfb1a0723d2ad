import shutil

import pytest
import torch

from supernets import CheckpointError, load_supernet, read_supernet_card, registry
from supernets.float_net import FloatSupernet
from supernets.foundation.files import atomic_torch_save, sha256
from supernets.resnet import ResNetConfig


def test_shipped_checkpoint_matches_its_card(net):
    card = read_supernet_card("resnet20-fashionmnist")
    assert sha256(registry.SUPERNETS["resnet20-fashionmnist"].checkpoint) == card["sha256"]
    assert net.bit_choices == (2, 3, 4, 5, 6, 7, 8) and net.num_switchable == 18 and net.frozen
    assert not any(p.requires_grad for p in net.parameters())


def test_unknown_name_lists_known():
    with pytest.raises(KeyError, match="known supernets: mobilenetv2-tiny-fashionmnist, resnet20-fashionmnist"):
        load_supernet("resnet56-imagenet")


def _patched_entry(monkeypatch, tmp_path, payload: bytes):
    entry = registry.SUPERNETS["resnet20-fashionmnist"]
    ckpt = tmp_path / "net.pt"
    ckpt.write_bytes(payload)
    card = tmp_path / "card.json"
    shutil.copy(entry.card, card)
    fake = registry.SupernetEntry("resnet20-fashionmnist", ckpt, card, "fashion-mnist")
    monkeypatch.setitem(registry.SUPERNETS, "resnet20-fashionmnist", fake)
    registry._load.cache_clear()
    return ckpt


def test_corrupt_checkpoint_is_refused(monkeypatch, tmp_path):
    data = bytearray(registry.SUPERNETS["resnet20-fashionmnist"].checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    _patched_entry(monkeypatch, tmp_path, bytes(data))
    try:
        with pytest.raises(CheckpointError, match="corrupt or was replaced"):
            load_supernet("resnet20-fashionmnist")
    finally:
        registry._load.cache_clear()


def test_truncated_file_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_supernet("resnet20-fashionmnist", checkpoint=bad)


def test_foreign_checkpoint_is_refused(tmp_path):
    path = tmp_path / "float.pt"
    model = FloatSupernet(ResNetConfig())
    atomic_torch_save({"model": model.state_dict(), "config": ResNetConfig().as_dict(), "kind": "float"}, path)
    with pytest.raises(CheckpointError, match="not a supernet"):
        load_supernet("resnet20-fashionmnist", checkpoint=path)
    atomic_torch_save({"model": model.state_dict(), "config": ResNetConfig().as_dict(), "kind": "supernet"}, path)
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        load_supernet("resnet20-fashionmnist", checkpoint=path)
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not an abn-gym supernet checkpoint"):
        load_supernet("resnet20-fashionmnist", checkpoint=path)


def test_card_files_resolve_inside_the_cards_folder(tmp_path):
    card_file = registry.card_file
    card = tmp_path / "cards" / "mine.json"
    card.parent.mkdir()
    (card.parent / "sub").mkdir()
    assert card_file(card, "sub/net.pt") == card.parent.resolve() / "sub" / "net.pt"
    (card.parent / "out").symlink_to(tmp_path)
    for name in ("/etc/hostname", "../net.pt", "sub/../../net.pt", "out/net.pt", "", None, 3):
        with pytest.raises(CheckpointError, match="own folder"):
            card_file(card, name)
