"""The `abn-gym` command: mistakes get one clear line (exit 2), bugs keep their traceback."""

import json
import sys
import textwrap

import gymnasium as gym
import pytest

from agents.app import cli
from agents.app.cli import main
from agents.app.validate import ResultsMismatchError
from agents.controllers.registry import BenchContext, load_user_agent, make_agent
from supernets.foundation.errors import ABNGymError, UsageError

CTX = BenchContext("ABN-ResNet-v0", "resnet20-fashionmnist", (2, 3, 4, 5, 6, 7, 8))


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["bench", "--episodes", "999999"], "--episodes 999999: the test split has 10000 images; choose 1 to 10000"),
        (["bench", "--agents", "greedy@abc"], "greedy@<tau> takes tau, the minimum softmax confidence"),
        (["bench", "--agents", "greedy@1.5"], "a number in [0, 1] (e.g. greedy@0.9); got '1.5'"),
        (["bench", "--agents", "runs/none/model.zip"], "no such model file"),
        (["bench", "--agents", "nosuchmodule_xyz:Agent"], "looked in the current folder"),
    ],
)
def test_cryptic_errors_are_clear(argv, needle, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path), "--no-progress"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("abn-gym: error:") and needle in line


@pytest.mark.parametrize("value", ["0", "-3", "ten"])
def test_episodes_must_be_a_positive_integer(value, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--episodes", value])
    assert exc.value.code == 2
    assert "argument --episodes: expected a positive integer" in capsys.readouterr().err


def test_validate_names_a_file_that_is_not_json(tmp_path, capsys):
    binary = tmp_path / "picture.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    assert main(["validate", str(binary)]) == 2
    line = one_error_line(capsys)
    assert str(binary) in line and "is not a JSON file" in line
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ResultsMismatchError, match="not an abn-gym results file"):
        from agents.app.validate import validate

        validate(tmp_path / "list.json")


def test_an_empty_checkpoint_gets_one_line(tmp_path, capsys):
    empty = tmp_path / "e.pt"
    empty.write_bytes(b"")
    assert main(["supernet", "eval", "--checkpoint", str(empty)]) == 2
    assert (
        one_error_line(capsys)
        == f"abn-gym: error: checkpoint {empty} is empty (0 bytes): it was truncated or never written"
    )


def test_a_bug_keeps_its_traceback(monkeypatch):
    def buggy(ns):
        return {}["missing"]  # a KeyError from a bug, not from the user

    monkeypatch.setattr(cli, "cmd_validate", buggy)  # the parser binds handlers when main() builds it
    with pytest.raises(KeyError, match="missing"):
        main(["validate", "x.json"])


@pytest.mark.parametrize(
    "kwargs,needle",
    [({"bit_choices": (4, 4)}, "distinct bit-widths"), ({"cost_coef": "0.1"}, "invalid cost_coef='0.1'")],
)
def test_env_argument_mistakes_are_project_errors(kwargs, needle):
    with pytest.raises(ABNGymError, match=needle) as exc:
        gym.make("ABN-ResNet-v0", **kwargs)
    assert isinstance(exc.value, ValueError)  # what Gymnasium users catch
    with pytest.raises(TypeError, match="unknown environment argument"):
        gym.make("ABN-ResNet-v0", colour="red")


def test_agent_in_the_current_folder_is_found(tmp_path, monkeypatch, capsys):
    (tmp_path / "myagent_cwd.py").write_text(
        textwrap.dedent(
            """
            import numpy as np

            class MyAgent:
                name = "mine"
                stochastic = False

                def reset(self, num_envs, seed):
                    pass

                def act(self, obs, infos):
                    return np.full(len(obs), 2)
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    out = tmp_path / "results"
    assert main(["bench", "--agents", "myagent_cwd:MyAgent,fixed-8", "--episodes", "4", "--out", str(out)]) == 0
    assert [r["agent"] for r in json.loads((out / "results.json").read_text())["rows"]] == ["mine", "fixed-8"]
    # A module that imports something missing says so, instead of blaming the folder.
    (tmp_path / "broken_agent.py").write_text("import no_such_dependency_xyz\n")
    with pytest.raises(UsageError, match="No module named 'no_such_dependency_xyz'"):
        load_user_agent("broken_agent:Agent")


def test_list_agents_explains_every_form(capsys):
    assert main(["bench", "--list-agents"]) == 0
    out = capsys.readouterr().out
    for form in ("greedy@<tau>", "PATH.zip", "module:Class", "static-<b>", "escalation@sweep", "PATH.zip@sweep"):
        assert form in out
    assert make_agent("greedy@0.9", CTX).tau == 0.9


def test_static_search_writes_to_its_out_folder_not_the_package(tmp_path, monkeypatch, capsys):
    from agents.app import static_search
    from agents.controllers import static_configs

    shipped = static_configs.shipped_path("resnet20-fashionmnist")
    before = shipped.read_bytes()
    fake = {
        "configs": {"4": [4] * 18},
        "val_accuracy": {"4": 0.9},
        "bitops": {"4": 1.0},
        "targets": {"4": 1.0},
        "bit_choices": [2, 3, 4, 5, 6, 7, 8],
    }
    monkeypatch.setattr(static_configs, "static_search", lambda *a, **k: fake)
    assert main(["static-search", "--out", str(tmp_path), "--no-progress"]) == 0
    written = json.loads((tmp_path / "static-resnet20-fashionmnist.json").read_text())
    assert written["configs"] == fake["configs"] and written["command"].startswith("abn-gym static-search")
    assert shipped.read_bytes() == before
    monkeypatch.setattr(static_search, "__file__", "/usr/lib/python3/site-packages/agents/app/static_search.py")
    assert main(["static-search", "--out", str(tmp_path), "--publish", "--no-progress"]) == 2
    assert "not a source checkout" in capsys.readouterr().err
    assert shipped.read_bytes() == before


def test_perf_is_mounted_from_the_perf_subpackage():
    from agents.app.perf.cli import cmd_perf

    ns = cli.build_parser().parse_args(["perf", "--quick", "--out", "docs"])
    assert ns.func is cmd_perf and ns.quick and ns.out == "docs"


def test_bench_progress_is_one_line_per_listed_agent_off_a_terminal(tmp_path):
    import subprocess

    argv = ["bench", "--env", "ABN-ResNet20Quarter-v1", "--split", "val", "--episodes", "20"]
    argv += ["--agents", "fixed-2,fixed-4,random", "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "agents.app.cli", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert "\r" not in done.stderr  # no progress bar redrawn into a file
    mine = [line for line in lines if line.startswith("bench: ") and "episodes" in line]
    assert sorted(line.split(":")[1].strip() for line in mine) == ["fixed-2", "fixed-4", "random"]
    front = json.loads((tmp_path / "out" / "results.json").read_text())["front"]
    unlisted = len({r["agent"] for r in front} - {"fixed-2", "fixed-4", "random"})
    assert f"bench: {unlisted} static rows of the front that were not listed" in done.stderr
    # A refused bench leaves no --out behind.
    refused = subprocess.run(
        [sys.executable, "-m", "agents.app.cli", "bench", "--agents", "fixed-9", "--out", str(tmp_path / "no")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and not (tmp_path / "no").exists()
