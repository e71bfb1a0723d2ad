"""Loading what others send runs none of their code: model zips, model cards, supernet cards, plain SB3 zips.

Every payload is harmless: it writes a marker file in the test's temporary folder. Each protection is
also shown to be the reason (the opt-in flag makes the payload run), so a test cannot pass vacuously.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import shutil
import uuid
import zipfile

import cloudpickle
import numpy as np
import pytest
from stable_baselines3 import PPO

from abn_gym.sb3 import SB3VecEnv
from agents.app.bench import run_agent
from agents.app.cli import main
from agents.controllers.safe_load import UnsafeModelError
from agents.controllers.sb3_agent import SB3Agent
from supernets.foundation.errors import CheckpointError
from supernets.foundation.files import sha256
from supernets.registry import CHECKPOINT_DIR, get_entry, load_supernet

ENV = "ABN-ResNet20Quarter-v1"
BENCH = ["--split", "val", "--episodes", "20", "--no-progress", "--json"]


class Payload:
    """Unpickling this touches ``marker``: proof that loading ran the sender's code."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.fixture(scope="module")
def plain_zip(tmp_path_factory) -> pathlib.Path:
    """A PPO model saved by plain SB3 (``model.save``, no card) on the quarter-width env."""
    path = tmp_path_factory.mktemp("plain") / "model.zip"
    env = SB3VecEnv(ENV, num_envs=4, seed=0, split="val")
    model = PPO("MlpPolicy", env, n_steps=18, batch_size=36, n_epochs=1, seed=0, device="cpu")
    model.learn(72)
    model.save(str(path))
    return path


def _evil_copy(plain: pathlib.Path, folder: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    """``plain`` with a cloudpickled payload under a ``:serialized:`` key of its data, as SB3 stores objects."""
    folder.mkdir(parents=True, exist_ok=True)
    evil = folder / "evil.zip"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            raw = src.read(item.filename)
            if item.filename == "data":
                data = json.loads(raw)
                blob = base64.b64encode(cloudpickle.dumps(Payload(marker))).decode()
                data["lr_schedule"] = {":type:": "<class 'function'>", ":serialized:": blob}
                raw = json.dumps(data).encode()
            dst.writestr(item, raw)
    return evil


def _card(model: pathlib.Path, env: str = ENV) -> None:
    card = {"algo": "ppo", "env": env, "env_kwargs": {}, "sha256": sha256(model)}
    (model.parent / "card.json").write_text(json.dumps(card))


def test_a_pickled_payload_in_a_zip_never_runs_unless_trusted(plain_zip, tmp_path, capsys):
    marker = tmp_path / "marker"
    evil = _evil_copy(plain_zip, tmp_path / "sub", marker)
    _card(evil)
    out = tmp_path / "out"
    assert main(["bench", "--agents", str(evil), "--out", str(out), *BENCH]) == 0
    assert not marker.exists()
    doc = json.loads((out / "results.json").read_text())
    assert doc["trust_pickle"] is False and str(evil) in {r["agent"] for r in doc["rows"]}
    # Without a card: refused or loaded safely, never run.
    agent = SB3Agent.load(evil, "ppo")
    assert not marker.exists()
    plain = PPO.load(str(plain_zip), device="cpu")  # the same weights, loaded by SB3 itself
    obs = np.random.default_rng(0).random((50, *plain.observation_space.shape)).astype(np.float32)
    assert (agent.model.predict(obs, deterministic=True)[0] == plain.predict(obs, deterministic=True)[0]).all()
    # The payload is live: trusting the file runs it, and the run says so.
    capsys.readouterr()
    assert main(["bench", "--agents", str(evil), "--out", str(out), "--trust-pickle", *BENCH]) == 0
    assert marker.exists()
    assert json.loads((out / "results.json").read_text())["trust_pickle"] is True
    marker.unlink()
    SB3Agent.load(evil, "ppo", trust_pickle=True)
    assert marker.exists()


def test_a_zip_with_a_foreign_policy_is_refused_naming_the_opt_in(plain_zip, tmp_path, capsys):
    folder = tmp_path / "m"
    evil = _evil_copy(plain_zip, folder, tmp_path / "marker")
    with zipfile.ZipFile(evil) as src:
        data = json.loads(src.read("data"))
        files = {n: src.read(n) for n in src.namelist()}
    data["policy_kwargs"] = {":serialized:": "AAAA", "features_extractor_class": "<class 'evil.Extractor'>"}
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(evil, "w") as dst:
        for name, raw in files.items():
            dst.writestr(name, raw)
    with pytest.raises(UnsafeModelError, match="--trust-pickle"):
        SB3Agent.load(evil, "ppo")
    _card(evil)
    assert main(["bench", "--agents", str(evil), "--out", str(tmp_path / "out"), *BENCH]) == 2
    assert "features_extractor_class" in (err := capsys.readouterr().err) and "--trust-pickle" in err
    assert not (tmp_path / "marker").exists()


def test_a_card_with_a_module_env_imports_nothing(plain_zip, tmp_path, monkeypatch, capsys):
    module = f"evilmod_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "marker"
    (tmp_path / f"{module}.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "sent" / "model.zip"
    model.parent.mkdir()
    shutil.copy(plain_zip, model)
    _card(model, f"{module}:{ENV}")
    for extra in ([], ["--env", ENV]):
        assert main(["bench", "--agents", str(model), *extra, "--out", str(tmp_path / "out"), *BENCH]) == 2
        assert "--trust-card-env" in capsys.readouterr().err
    with pytest.raises(UnsafeModelError, match="trust_card_env"):
        SB3Agent.load(model)
    assert not marker.exists()
    # The import is live: opting in runs it.
    assert main(["bench", "--agents", str(model), "--trust-card-env", "--out", str(tmp_path / "out"), *BENCH]) == 0
    assert marker.exists()


def _outside_hex(message: str, digest: str) -> list[str]:
    """Runs of 6+ hex digits in ``message`` that are part of ``digest``."""
    return [run for run in re.findall(r"[0-9a-f]{6,}", message) if run in digest]


@pytest.mark.parametrize("form", ["absolute", "dotdot", "symlink"])
def test_supernet_card_paths_must_stay_in_the_card_folder(form, tmp_path, capsys):
    shipped = json.loads((CHECKPOINT_DIR / "resnet20-quarter-fashionmnist.json").read_text())
    outside = tmp_path / "outside" / "secret.pt"
    outside.parent.mkdir()
    shutil.copy(CHECKPOINT_DIR / shipped["file"], outside)
    folder = tmp_path / "cards"
    folder.mkdir()
    name = {"absolute": str(outside), "dotdot": "../outside/secret.pt", "symlink": "link.pt"}[form]
    if form == "symlink":
        (folder / "link.pt").symlink_to(outside)
    card = folder / "mine.json"
    card.write_text(json.dumps({**shipped, "file": name, "sha256": "0" * 64}))
    digest = sha256(outside)
    with pytest.raises(CheckpointError, match="own folder") as caught:
        load_supernet(card)
    assert not _outside_hex(str(caught.value), digest)
    assert main(["bench", "--supernet", str(card), "--agents", "fixed-4", "--out", str(tmp_path / "o"), *BENCH]) == 2
    err = capsys.readouterr().err
    assert "own folder" in err and not _outside_hex(err, digest)


def test_a_supernet_card_with_its_file_beside_it_loads(tmp_path):
    shipped = json.loads((CHECKPOINT_DIR / "resnet20-quarter-fashionmnist.json").read_text())
    shutil.copy(CHECKPOINT_DIR / shipped["file"], tmp_path / "net.pt")
    card = tmp_path / "mine.json"
    card.write_text(json.dumps({**shipped, "file": "net.pt"}))
    assert get_entry(card).checkpoint == tmp_path.resolve() / "net.pt"
    assert load_supernet(card) is not None
    card.write_text(json.dumps({**shipped, "file": "net.pt", "sha256": "0" * 64}))
    with pytest.raises(CheckpointError) as caught:
        load_supernet(card)
    assert sha256(tmp_path / "net.pt")[:16] not in str(caught.value)  # only the card's own hash is shown


def test_a_plain_sb3_model_is_benched_with_one_command(plain_zip, tmp_path, capsys):
    argv = ["bench", "--env", ENV, "--agents", f"ppo:{plain_zip}@my-ppo,fixed-4", "--out", str(tmp_path)]
    assert main([*argv, *BENCH]) == 0
    rows = {r["agent"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert set(rows) == {"my-ppo", "fixed-4"}
    # The same model loaded by SB3 itself (it is the test's own file) gives the same episodes.
    records = run_agent(SB3Agent(PPO.load(str(plain_zip), device="cpu")), ENV, "val", 20, progress=False)
    assert rows["my-ppo"]["accuracy"] == pytest.approx(np.mean([r["correct"] for r in records]))
    mine = [r for r in json.loads((tmp_path / "results.json").read_text())["records"] if r["agent"] == "my-ppo"]
    assert [r["bits"] for r in mine] == [r["bits"] for r in records]


@pytest.mark.parametrize(
    "spec,needle",
    [
        ("ppo:{zip}@ppo", "choose another after the @, e.g. --agents ppo:"),
        ("ppo:{zip}@fixed-4", "choose another after the @"),
        ("{zip}", "--agents ppo:"),
    ],
)
def test_a_plain_model_name_clash_or_missing_algo_says_what_to_write(plain_zip, spec, needle, tmp_path, capsys):
    argv = ["bench", "--env", ENV, "--agents", spec.format(zip=plain_zip), "--out", str(tmp_path)]
    assert main([*argv, *BENCH]) == 2
    assert needle in capsys.readouterr().err
