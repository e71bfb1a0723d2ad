"""The "Bring your own network" guide, run exactly as written, leaves the package untouched."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "guides" / "bring-your-own-network.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def guide_steps() -> list[tuple[str, str]]:
    """The guide's code blocks in order, as (language, text)."""
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(GUIDE.read_text())]


def _git_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_the_guide_has_every_step():
    steps = guide_steps()
    text = "\n".join(t for _, t in steps)
    for needle in (
        "--arch-config",
        "--train-limit",
        "publish --name",
        "gym.make(",
        "static-search",
        "bench --supernet",
        "train-escalation",
        "gymnasium.register(",
        "--import my_family",
        "@register_family",
    ):
        assert needle in text, needle
    register = next(t for lang, t in steps if lang == "python" and "gymnasium.register(" in t)
    assert len(register.strip().splitlines()) == 6  # the "# file:" line and five lines of code


@pytest.mark.slow
def test_the_guide_runs_in_an_empty_folder_and_leaves_the_package_untouched(tmp_path):
    before = _git_status()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
    }
    for k, (lang, text) in enumerate(guide_steps()):
        first = text.splitlines()[0]
        if first.startswith("# file: "):
            (tmp_path / first[len("# file: ") :].strip()).write_text(text)
            continue
        if lang == "python":
            cmd = [sys.executable, "-c", text]
        elif lang == "bash":
            cmd = ["bash", "-e", "-o", "pipefail", "-c", text]
        else:
            raise AssertionError(f"block {k} ({lang}) is neither a file nor a command")
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"block {k} failed:\n{text}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (tmp_path / "nets" / "tiny.json").is_file() and (tmp_path / "nets" / "static-tiny.json").is_file()
    assert (tmp_path / "nets" / "widestem.json").is_file() and (tmp_path / "results" / "widestem").is_dir()
    assert "searching the static front" not in done.stderr
    assert _git_status() == before
