"""`abn-gym zoo` on the command line."""

import pytest

from agents.app.cli import main
from agents.app.zoo.hyperparams import HYPERPARAMS, load_hyperparams


def test_cli_exports_rl_zoo3_files(tmp_path, capsys):
    assert main(["zoo", "--export-rl-zoo3", str(tmp_path)]) == 0
    assert sorted(p.stem for p in tmp_path.glob("*.yml")) == sorted(load_hyperparams(HYPERPARAMS))
    assert str(tmp_path / "ppo.yml") in capsys.readouterr().out


@pytest.mark.parametrize("steps", ["-1", "0"])
def test_cli_refuses_nonpositive_timesteps_in_one_line(tmp_path, capsys, steps):
    """#19: `zoo --timesteps -1` was an IndexError traceback; now one line naming the fix, before any run."""
    out = tmp_path / "zoo"
    assert main(["zoo", "--timesteps", steps, "--algos", "ppo", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith("abn-gym: error: --timesteps " + steps)
    assert not out.exists()
