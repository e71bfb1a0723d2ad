"""Every code block of README.md runs, as written, in an empty folder (only its sizes shrunk).

The sizes are shrunk by the named text substitutions below, each of which must match exactly once:
a README change that breaks one fails here instead of silently running the full size. The set of
blocks is pinned too (one signature per block), so a new block fails until a test covers it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
SHIPPED = ROOT / "supernets" / "checkpoints"

# Signatures (language, first line) of every README block, in order; what runs each one.
QUICKSTART = ("python", "import gymnasium as gym")
PPO = ("python", "from stable_baselines3 import PPO")
RECIPE = (
    "bash",
    "abn-gym train --env ABN-ResNet20Quarter-v1 --normalize-obs --decide-at 0 --reward baseline --cost-coef 0.125 \\",
)
MYAGENT = ("python", "# myagent.py")
MYAGENT_BENCH = ("bash", "abn-gym bench --agents myagent:Cheap,fixed-2,fixed-4,static-4 --split val")
MY_ENV = ("python", "# my_env.py")
# `make test` / `make bench` are the CI's own commands (the whole suite, the full benchmark): not run here.
MAKE = ("bash", "make test    # set up, then run the whole test suite")
KNOWN = [MAKE, QUICKSTART, PPO, RECIPE, MYAGENT, MYAGENT_BENCH, MY_ENV]

# The size substitutions, per block: (README text, what runs instead). Sizes only, nothing else.
SHRINK: dict[tuple[str, str], list[tuple[str, str]]] = {
    PPO: [
        ("model.learn(50_000)", "model.learn(1024)"),
        ('"ABN-ResNet-v0", "val", 1000)', '"ABN-ResNet-v0", "val", 20)'),
    ],
    RECIPE: [
        ("--timesteps 900000", "--timesteps 1024"),
        ("--keep-best-every 60000", "--keep-best-every 512 --eval-episodes 20"),
        ("--out runs/ppo/bench", "--out runs/ppo/bench --episodes 20 --no-progress"),
    ],
    MYAGENT_BENCH: [("--split val", "--split val --episodes 20 --no-progress")],
}


def readme_blocks() -> dict[tuple[str, str], str]:
    """README's code blocks, keyed by their signature (language, first line)."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text())]
    keyed = {(lang, text.splitlines()[0]): text for lang, text in blocks}
    assert len(keyed) == len(blocks), "two README blocks share a first line: give each its own"
    return keyed


def shrunk(sig: tuple[str, str]) -> str:
    """The block ``sig`` with its size substitutions applied, each checked to match exactly once."""
    text = readme_blocks()[sig]
    for old, new in SHRINK.get(sig, []):
        assert text.count(old) == 1, f"README block {sig[1]!r} has {text.count(old)} of {old!r}: update SHRINK"
        text = text.replace(old, new)
    return text


def _env(tmp_path: Path) -> dict[str, str]:
    """Environment for a block: this worktree's packages, and `abn-gym` as this Python's CLI module."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "abn-gym"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m agents.app.cli "$@"\n')
    shim.chmod(0o755)
    return {
        **os.environ,
        "PATH": str(bin_dir) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }


def _run(cmd: list[str], tmp_path: Path, timeout: int = 300) -> str:
    done = subprocess.run(cmd, cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd[-1][:400]}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _python(text: str, tmp_path: Path) -> str:
    return _run([sys.executable, "-c", text], tmp_path)


def _bash(text: str, tmp_path: Path) -> str:
    return _run(["bash", "-e", "-o", "pipefail", "-c", text], tmp_path)


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {row["agent"]: row for row in csv.DictReader(f)}


def test_the_readme_blocks_are_the_known_ones_and_every_substitution_matches_once():
    assert list(readme_blocks()) == KNOWN  # a new or changed block needs its test here
    for sig in SHRINK:
        shrunk(sig)


def test_quickstart_steps_an_episode(tmp_path):
    out = _python(shrunk(QUICKSTART) + "\nprint(type(reward).__name__, reward, terminated, truncated)\n", tmp_path)
    kind, reward, terminated, truncated = out.split()[-4:]
    assert kind == "float" and float(reward) <= 0.0  # a BitOps price, and no end-of-episode bonus yet
    assert (terminated, truncated) == ("False", "False")  # 18 steps to go, not 1


@pytest.mark.slow
def test_ppo_block_trains_and_prints_accuracy_and_bitops(tmp_path):
    accuracy, bitops = (float(x) for x in _python(shrunk(PPO), tmp_path).split()[-2:])
    assert 0.0 <= accuracy <= 1.0
    assert bitops > 0


@pytest.mark.slow
def test_custom_agent_goes_on_the_leaderboard(tmp_path):
    (tmp_path / "myagent.py").write_text(shrunk(MYAGENT))
    _bash(shrunk(MYAGENT_BENCH), tmp_path)
    rows = _rows(tmp_path / "results" / "leaderboard.csv")
    assert {"cheap", "fixed-2", "fixed-4", "static-4"} <= set(rows)
    assert rows["cheap"]["bitops"] == rows["fixed-2"]["bitops"]  # index 0 is 2 bits everywhere
    assert rows["cheap"]["bitops"] != rows["fixed-4"]["bitops"]


@pytest.mark.slow
def test_train_recipe_writes_a_model_that_benches(tmp_path):
    _bash(shrunk(RECIPE), tmp_path)
    run = tmp_path / "runs" / "ppo"
    assert (run / "model.zip").is_file()
    card = json.loads((run / "card.json").read_text())
    assert card["env"] == "ABN-ResNet20Quarter-v1"
    rows = _rows(run / "bench" / "leaderboard.csv")
    assert {"fixed-4", "static-4"} < set(rows) and len(rows) == 3  # and one row for the trained model
    # The README's next sentence: `SB3Agent.load("runs/ppo/model.zip")` loads it in Python with its env.
    out = _python('from agents import SB3Agent\nprint(SB3Agent.load("runs/ppo/model.zip").env_id)\n', tmp_path)
    assert out.split()[-1] == card["env"]


def test_my_env_registers_an_id_for_a_published_card(tmp_path):
    # A published card beside the module: the shipped quarter-width supernet's card and checkpoint, copied
    # under the name `mine` (training one, as the guide's own test does, takes minutes).
    nets = tmp_path / "nets"
    nets.mkdir()
    card = json.loads((SHIPPED / "resnet20-quarter-fashionmnist.json").read_text())
    shutil.copyfile(SHIPPED / card["file"], nets / "mine.pt")
    card.update(name="mine", file="mine.pt")
    (nets / "mine.json").write_text(json.dumps(card))
    (tmp_path / "my_env.py").write_text(shrunk(MY_ENV))
    out = _python(
        "import gymnasium as gym\n"
        'env = gym.make("my_env:ABN-Mine-v0")\n'
        "obs, info = env.reset(seed=0)\n"
        "obs, reward, terminated, truncated, info = env.step(0)\n"
        "print(env.unwrapped.config.supernet, env.unwrapped.config.cost_coef, reward)\n",
        tmp_path,
    )
    supernet, cost_coef, reward = out.split()[-3:]
    assert Path(supernet) == nets / "mine.json"
    assert float(cost_coef) == 0.1 and float(reward) < 0.0
