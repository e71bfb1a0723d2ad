"""Nothing lost, nothing stale: each case runs the real ``abn-gym`` command in its own process.

- two benches on one ``--out``: the second is refused, naming the first, which completes;
- a custom agent whose helper module changed after an interrupted bench is recomputed, and the rerun says so;
- ``abn-gym train`` killed with SIGKILL and rerun ends with the same model as an uninterrupted run, bit for bit;
- a write the operating system refuses (a file-size limit, as a full disk would) gives one error line, and the
  previous files stay as they were.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from agents.app import bench_resume
from agents.app.cli import main
from supernets.foundation.errors import OutputInUseError
from supernets.foundation.files import LOCK_FILE, output_lock

ROOT = Path(__file__).resolve().parents[3]
ENV = "ABN-ResNet20Quarter-v1"
BENCH = ["bench", "--env", ENV, "--split", "val", "--episodes", "20", "--no-progress"]
TRAIN = [
    "train", "--env", ENV, "--timesteps", "1440", "--num-envs", "8", "--n-steps", "18", "--batch-size", "72",
    "--n-epochs", "2", "--net-arch", "16", "--checkpoint-every", "144", "--eval-episodes", "20",
    "--keep-best-every", "200", "--normalize-obs",
]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def _cli(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "agents.app.cli", *args]


def _run(args: list[str], cwd: Path, limit_bytes: int | None = None, **env: str) -> subprocess.CompletedProcess:
    def limit() -> None:  # in the child: writes past the limit fail with EFBIG, as a full disk fails with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        _cli(args),
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=None if limit_bytes is None else limit,
    )


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The command's one ``abn-gym: error:`` line (exit 2, no traceback)."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("abn-gym: error:")]
    assert len(errors) == 1 and proc.stderr.strip().splitlines()[-1] == errors[0], proc.stderr[-3000:]
    return errors[0]


GATE = """
import os, time
import numpy as np

class Gate:
    name = "gate"
    stochastic = False

    def reset(self, num_envs, seed):
        self.n = num_envs

    def act(self, obs, infos):
        deadline = time.monotonic() + 120
        while not os.path.exists(os.environ["GATE_FILE"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        return np.full(self.n, len(infos["bit_choices"]) - 1, dtype=np.int64)
"""


@pytest.mark.slow
def test_a_second_bench_on_one_out_is_refused_naming_the_first_which_completes(tmp_path):
    (tmp_path / "gate.py").write_text(GATE)
    out, go = tmp_path / "out", tmp_path / "go"
    first = subprocess.Popen(
        _cli([*BENCH, "--agents", "gate:Gate,fixed-4", "--out", str(out)]),
        cwd=tmp_path,
        env=_env(GATE_FILE=str(go)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        lock = out / LOCK_FILE
        while not (lock.is_file() and lock.read_text().startswith(f"{first.pid}\n")):
            assert first.poll() is None and time.monotonic() < deadline, "the first bench never took --out"
            time.sleep(0.05)
        # Other settings, and an agent that does not wait: without the lock it would finish and publish first.
        second = _run([*BENCH[:-2], "10", "--no-progress", "--agents", "fixed-2", "--out", str(out)], tmp_path)
        line = _one_error_line(second)
        assert f"pid {first.pid}:" in line and "bench" in line and "is in use" in line
        assert first.poll() is None  # still running, untouched
    finally:
        go.write_text("")
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    table = pd.read_csv(out / "leaderboard.csv")
    assert doc["episodes"] == 20 and list(table["agent"]) == [r["agent"] for r in doc["rows"]] == ["gate", "fixed-4"]
    assert list(table["accuracy"]) == [r["accuracy"] for r in doc["rows"]]
    assert (table["episodes"] == 20).all()
    # the gate row is fixed-8's: its records are all 8-bit episodes
    assert {tuple(set(r["bits"])) for r in doc["records"] if r["agent"] == "gate"} == {(8,)}


AGENTS = """
import os
import numpy as np
import helper

class Helped:
    name = "helped"
    stochastic = False

    def reset(self, num_envs, seed):
        self.n = num_envs

    def act(self, obs, infos):
        return np.full(self.n, helper.ACTION, dtype=np.int64)

class Flaky:
    name = "flaky"
    stochastic = False

    def reset(self, num_envs, seed):
        if os.path.exists("fail"):
            raise RuntimeError("interrupted on purpose")
        self.n = num_envs

    def act(self, obs, infos):
        return np.zeros(self.n, dtype=np.int64)
"""


@pytest.mark.slow
def _saved_rows(out: Path, name: str) -> dict[Path, bytes]:
    """The interrupted run's saved files of the agent ``name`` (the static rows are kept there too)."""
    files = (out / ".bench-partial").glob("agent-*.json")
    return {p: p.read_bytes() for p in files if json.loads(p.read_text())["name"] == name}


def test_a_custom_agent_whose_helper_module_changed_is_recomputed_on_resume(tmp_path):
    (tmp_path / "myagents.py").write_text(textwrap.dedent(AGENTS))
    (tmp_path / "helper.py").write_text("ACTION = 0\n")
    (tmp_path / "fail").write_text("")
    argv = [*BENCH, "--agents", "myagents:Helped,myagents:Flaky", "--out", "out"]
    # Interrupted: helped finishes, flaky raises. A rerun with nothing changed reuses helped's rows.
    assert "interrupted on purpose" in _one_error_line(_run(argv, tmp_path))
    saved = _saved_rows(tmp_path / "out", "helped")
    assert len(saved) == 1  # helped's rows (its wall time would differ, were they computed again)
    again = _run(argv, tmp_path)
    assert "interrupted on purpose" in _one_error_line(again) and "recomputing" not in again.stderr
    assert _saved_rows(tmp_path / "out", "helped") == saved
    # The helper changes (the agent's own file does not): helped is recomputed, and the run says why.
    (tmp_path / "helper.py").write_text("ACTION = 1  # one bit-width up\n")
    (tmp_path / "fail").unlink()
    rerun = _run(argv, tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    said = [line for line in rerun.stderr.splitlines() if "recomputing" in line]
    assert len(said) == 1 and "'helped'" in said[0] and str(tmp_path / "helper.py") in said[0]
    resumed = [line for line in rerun.stderr.splitlines() if line.startswith("resumed:")]
    assert not any("helped" in line for line in resumed)  # the static rows kept by the first run are reused
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    second = doc["env_kwargs"]["bit_choices"]
    bits = {b for r in doc["records"] if r["agent"] == "helped" for b in r["bits"]}
    assert bits == {second[1]}


def _params(out: Path, name: str = "model.zip") -> dict[str, torch.Tensor]:
    with zipfile.ZipFile(out / name) as archive:
        return torch.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)


@pytest.mark.slow
def test_train_killed_and_resumed_equals_an_uninterrupted_run(tmp_path):
    whole = _run([*TRAIN, "--out", "whole"], tmp_path)
    assert whole.returncode == 0, whole.stderr[-3000:]
    # Killed with SIGKILL mid-run, just after a checkpoint (and after a keep-best evaluation), then rerun.
    killed = subprocess.Popen(
        _cli([*TRAIN, "--out", "cut"]), cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = tmp_path / "cut" / "checkpoints" / "state_576_steps.pt"
    deadline = time.monotonic() + 120
    while not state.is_file():
        assert killed.poll() is None and time.monotonic() < deadline, "the run ended before its checkpoint"
        time.sleep(0.002)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "cut" / "card.json").exists()
    resumed = _run([*TRAIN, "--out", "cut"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "exactly" in resumed.stderr
    # model.zip is the kept policy (maybe an early one), the last checkpoint the last policy trained: both equal
    for name in ("model.zip", "checkpoints/model_1440_steps.zip"):
        a, b = _params(tmp_path / "whole", name), _params(tmp_path / "cut", name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    card_a = json.loads((tmp_path / "whole" / "card.json").read_text())
    card_b = json.loads((tmp_path / "cut" / "card.json").read_text())
    assert card_a["val"] == card_b["val"] and card_a["selected_on_val"] == card_b["selected_on_val"]
    assert card_a["timesteps"] == card_b["timesteps"] == 1440
    assert card_a["resumes"] == [] and [r["exact"] for r in card_b["resumes"]] == [True]
    stats = "model.obs_norm.json"
    assert (tmp_path / "whole" / stats).read_bytes() == (tmp_path / "cut" / stats).read_bytes()


@pytest.mark.slow
def test_a_refused_write_gives_one_error_line_and_keeps_the_previous_files(tmp_path):
    # bench: a first set, then a run with other settings that cannot write its files
    out = tmp_path / "bench"
    assert _run([*BENCH, "--agents", "fixed-4", "--out", str(out)], tmp_path).returncode == 0

    def files() -> dict[str, bytes]:  # the published set (the lock file names whichever run holds --out)
        return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != LOCK_FILE}

    before = files()
    refused = _run([*BENCH, "--agents", "fixed-4", "--seeds", "1", "--out", str(out)], tmp_path, limit_bytes=4096)
    line = _one_error_line(refused)
    assert "could not write" in line and "File too large" in line and str(out) in line and "--out" in line
    assert files() == before and "results.json" in before
    # train: a finished run, then training it further cannot write its checkpoint
    run = tmp_path / "run"
    short = [*TRAIN[:4], "288", *TRAIN[5:]]
    assert _run([*short, "--out", str(run)], tmp_path).returncode == 0
    model, card = (run / "model.zip").read_bytes(), (run / "card.json").read_bytes()
    line = _one_error_line(_run([*TRAIN, "--out", str(run)], tmp_path, limit_bytes=4096))
    assert "could not write" in line and "File too large" in line and str(run) in line
    assert (run / "model.zip").read_bytes() == model and (run / "card.json").read_bytes() == card


def test_the_lock_names_its_holder_and_dies_with_it(tmp_path, capsys):
    out = tmp_path / "out"
    with output_lock(out):
        assert (out / LOCK_FILE).read_text().startswith(f"{os.getpid()}\n")
        expected = rf"--out {out} is in use by another run \(pid {os.getpid()}: "
        with pytest.raises(OutputInUseError, match=expected), output_lock(out):
            pass
    assert not out.exists()  # nothing was written: no folder left behind
    # train and bench take the same lock: neither starts on a folder that the other is writing into
    with output_lock(out):
        for command in (["train", "--timesteps", "10"], ["bench", "--agents", "fixed-4", "--episodes", "2"]):
            assert main([*command, "--env", ENV, "--out", str(out)]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert err[-1].startswith(f"abn-gym: error: --out {out} is in use by another run (pid {os.getpid()}: ")
        assert [p.name for p in out.iterdir()] == [LOCK_FILE]
    # A holder killed with SIGKILL leaves its file, but not its lock.
    code = "import os; from supernets.foundation.files import output_lock; "
    code += f"held = output_lock({str(out)!r}); held.__enter__(); os.kill(os.getpid(), 9)"
    killed = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=tmp_path, timeout=120)
    assert killed.returncode == -signal.SIGKILL and (out / LOCK_FILE).is_file()
    with output_lock(out):
        (out / "written").write_text("")
    assert [p.name for p in out.iterdir()] == ["written"]


def test_the_user_modules_are_those_outside_the_installed_packages(tmp_path, monkeypatch, capsys):
    (tmp_path / "durability_helper_mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "durability_helper_mod", raising=False)
    __import__("durability_helper_mod")
    files = bench_resume.user_module_files()
    helper = str((tmp_path / "durability_helper_mod.py").resolve())
    assert helper in files
    assert not any(f == os.path.realpath(m.__file__) for f in files for m in (json, torch, pd, bench_resume))
    entry = {"sources": bench_resume.fingerprint_sources(files)}
    finished = {"m:C#custom": entry}
    assert bench_resume.reusable(finished, "m:C#custom", "c") is entry
    (tmp_path / "durability_helper_mod.py").write_text("X = 2\n")
    assert bench_resume.reusable(finished, "m:C#custom", "c") is None
    assert f"recomputing 'c': its source changed since the interrupted run ({helper})" in capsys.readouterr().err
    # an entry of a custom agent that recorded no files is never reused
    assert bench_resume.reusable({"m:C#custom": {"sources": {}}}, "m:C#custom", "c") is None
