"""The one check of a ``--device`` option: a device this machine has, or one line that says the fix."""

import pytest
import torch

from supernets.foundation.devices import check_device
from supernets.foundation.errors import UsageError


def test_cpu_is_always_there():
    check_device("cpu")
    check_device("auto", auto=True)


def test_cuda_without_cuda_says_the_fix(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UsageError) as exc:
        check_device("cuda")
    assert str(exc.value) == "--device cuda: this machine has no CUDA device; use --device cpu"
    with pytest.raises(UsageError, match=r"^device= cuda:1: this machine has no CUDA device; use device= cpu$"):
        check_device("cuda:1", option="device=")


def test_a_cuda_index_beyond_the_machines(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_device("cuda:0")
    with pytest.raises(UsageError, match=r"--device cuda:3: this machine has 1 CUDA device\(s\)"):
        check_device("cuda:3")


@pytest.mark.parametrize("bad", ["tpu0", "gpu", ""])
def test_what_is_no_torch_device(bad):
    with pytest.raises(UsageError, match=r"is not a torch device; use cpu, cuda, cuda:<n>$"):
        check_device(bad)
    with pytest.raises(UsageError, match="is not a torch device"):
        check_device("auto")  # only where auto is allowed (abn-gym train's policy)
