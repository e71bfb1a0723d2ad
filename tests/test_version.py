"""`abn-gym --version` prints the version that pyproject.toml declares."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.app.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> str:
    # A regular expression, not tomllib: the project supports Python 3.10, which has no tomllib.
    return re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def test_version_prints_the_declared_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"abn-gym {_declared()}"


def test_the_console_entry_point_answers_version_without_a_command():
    done = subprocess.run(
        [sys.executable, "-m", "agents.app.cli", "--version"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["abn-gym", _declared()]


def test_the_declared_entry_point_is_the_main_tested_here():
    # The console script is written at install time: after a move, `pip install -e .` rewrites it.
    script = re.search(r'^abn-gym = "([\w.]+):(\w+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    module, attr = script.groups()
    assert getattr(__import__(module, fromlist=[attr]), attr) is main
