"""``abn-gym supernet train`` and ``supernet eval`` take --device: cpu as before, CUDA refused where there is none."""

import json

import pytest
import torch

from agents.app.cli import main
from supernets.foundation.files import safe_load

NO_CUDA = "abn-gym: error: --device cuda: this machine has no CUDA device; use --device cpu"
TINY_TRAIN = ["--mode", "float", "--epochs", "1", "--batch-size", "32", "--train-limit", "32", "--eval-limit", "16"]


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_train_on_cpu_is_the_default_run_exactly(tmp_path, capsys):
    default, cpu = tmp_path / "default", tmp_path / "cpu"
    assert main(["supernet", "train", *TINY_TRAIN, "--threads", "1", "--out", str(default)]) == 0
    assert main(["supernet", "train", *TINY_TRAIN, "--threads", "1", "--out", str(cpu), "--device", "cpu"]) == 0
    a, b = safe_load(default / "final.pt")["model"], safe_load(cpu / "final.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_on_cpu(capsys):
    assert main(["supernet", "eval", "--limit", "8", "--json", "--no-progress", "--device", "cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 8


@pytest.mark.parametrize("command", [["train", *TINY_TRAIN], ["eval", "--limit", "8", "--no-progress"]])
def test_cuda_without_cuda_is_one_line(command, tmp_path, capsys, no_cuda):
    out = tmp_path / "run"
    extra = ["--out", str(out)] if command[0] == "train" else []
    assert main(["supernet", *command, *extra, "--device", "cuda"]) == 2
    assert one_error_line(capsys) == NO_CUDA
    assert not out.exists()
