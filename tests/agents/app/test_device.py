"""bench, static-search and train-escalation take --device: cpu as before, CUDA refused where there is none."""

import json

import pytest
import torch

from agents.app.cli import build_parser, main
from agents.controllers import static_configs

NO_CUDA = "abn-gym: error: --device cuda: this machine has no CUDA device; use --device cpu"
ESCALATION = ["--train-images", "64", "--val-images", "16", "--epochs", "1", "--batch", "64", "--no-progress"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize("command", ["bench", "static-search", "train-escalation"])
def test_the_default_device_is_cpu(command):
    assert build_parser().parse_args([command]).device == "cpu"
    assert "--device" in build_parser()._subparsers._group_actions[0].choices[command].format_help()


def test_bench_on_cpu_records_the_env_as_before(tmp_path, capsys):
    args = ["bench", "--agents", "fixed-2", "--episodes", "8", "--jobs", "1", "--no-progress", "--json"]
    assert main([*args, "--out", str(tmp_path / "cpu"), "--device", "cpu"]) == 0
    assert main([*args, "--out", str(tmp_path / "default")]) == 0
    cpu, default = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("cpu", "default"))
    assert cpu["env_kwargs"] == default["env_kwargs"] and cpu["env_kwargs"]["device"] == "cpu"
    assert cpu["records"] == default["records"]


def test_static_search_runs_where_the_supernet_is(tmp_path, monkeypatch, capsys):
    seen = []

    def fake(net, split, **kwargs):
        seen.append(next(net.parameters()).device)
        return {"configs": {}, "val_accuracy": {}, "bitops": {}, "targets": {}, "bit_choices": [2], "trace": []}

    monkeypatch.setattr(static_configs, "static_search", fake)
    assert main(["static-search", "--out", str(tmp_path), "--no-progress", "--device", "cpu"]) == 0
    assert seen == [torch.device("cpu")]


def test_train_escalation_on_cpu(tmp_path, capsys):
    assert main(["train-escalation", *ESCALATION, "--out", str(tmp_path), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "card.json").read_text())["args"]["device"] == "cpu"


@pytest.mark.parametrize(
    "command",
    [
        ["bench", "--agents", "fixed-2", "--episodes", "8"],
        ["static-search", "--limit", "8", "--no-progress"],
        ["train-escalation", *ESCALATION],
    ],
)
def test_cuda_without_cuda_is_one_line(command, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    assert main([*command, "--out", str(out), "--device", "cuda"]) == 2
    assert one_error_line(capsys) == NO_CUDA
    assert not out.exists()
