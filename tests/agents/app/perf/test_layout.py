"""The perf sub-package: the wheel's import names, and ``python -m agents.app.perf`` as the script."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]


def test_the_wheel_installs_only_the_three_import_names():
    setuptools = pytest.importorskip("setuptools")
    from setuptools.config.pyprojecttoml import read_configuration

    tool = read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"]
    packages = tool.get("packages")
    if isinstance(packages, dict):  # discovery: find what setuptools will find, as it will
        find = packages["find"]
        assert find.get("namespaces") is False, "data folders must not become namespace packages"
        packages = setuptools.find_packages(where=str(ROOT), include=find["include"], exclude=find.get("exclude", ()))
    assert {p.split(".")[0] for p in packages} == {"abn_gym", "agents", "supernets"}
    assert "agents.app.perf" in packages


def test_python_m_agents_perf_runs_the_perf_command():
    done = subprocess.run(
        [sys.executable, "-m", "agents.app.perf", "--help"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "abn-gym perf" in done.stdout and "--include-bench" in done.stdout
