"""The CLI helper: each dataclass field becomes one option, parsed back into the same dataclass."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from supernets.foundation.cliargs import add_command, add_dataclass_args, arg, dataclass_from_args, positive_int
from supernets.foundation.errors import UsageError


def _names(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UsageError(f"--names {text!r} names nothing")
    return names


@dataclass
class Toy:
    path: str = arg(help="a positional argument", positional=True)
    env: str = arg("Toy-v0", "environment id")
    split: str = arg("test", "data split", choices=("train", "val", "test"))
    seeds: list[int] = arg([0], "comma-separated seeds")
    weights: list[float] = arg([0.5, 1.0], "comma-separated weights")
    episodes: int | None = arg(None, "first N images (default: all)", names=("-n", "--episodes"), type=positive_int)
    normalize: bool = arg(False, "standardise the observations")
    json: bool = arg(False, "print JSON", action="store_true")
    progress: bool = arg(True, "hide progress bars", names=("--no-progress",), action="store_false")
    note: list[str] = arg([], "a note (repeatable)", action="append")
    names: list[str] = arg([], "comma-separated names", parse=_names)
    share: float = arg(0.5, "a share in %")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy")
    add_dataclass_args(parser, Toy)
    return parser


def test_defaults_are_the_dataclass_defaults():
    ns = _parser().parse_args(["p"])
    assert dataclass_from_args(Toy, ns) == Toy(path="p")


def test_every_kind_of_field_parses_back_into_the_dataclass():
    argv = "p --env E-v1 --split val --seeds 3,4 --weights 0.25 -n 7 --normalize --json --no-progress"
    argv += " --note a --note b --names x,y --share 0.1"
    got = dataclass_from_args(Toy, _parser().parse_args(argv.split()))
    assert got == Toy(
        path="p",
        env="E-v1",
        split="val",
        seeds=[3, 4],
        weights=[0.25],
        episodes=7,
        normalize=True,
        json=True,
        progress=False,
        note=["a", "b"],
        names=["x", "y"],
        share=0.1,
    )
    assert Toy(path="q").note == [] and Toy(path="q").note is not Toy(path="q").note  # lists are not shared


@pytest.mark.parametrize(
    "argv,message",
    [
        (["p", "--seeds", "1,x"], "argument --seeds: expected comma-separated integers, got '1,x'"),
        (["p", "-n", "0"], "argument -n/--episodes: expected a positive integer, got 0"),
        (["p", "--split", "dev"], "argument --split: invalid choice: 'dev'"),
        ([], "the following arguments are required: path"),
    ],
)
def test_argparse_refuses_bad_values_by_option(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(argv)
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_parse_errors_are_the_callers_own():
    ns = _parser().parse_args(["p", "--names", " , "])
    with pytest.raises(UsageError, match="--names ' , ' names nothing"):
        dataclass_from_args(Toy, ns)


def test_help_shows_each_default_once(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "environment id (default: Toy-v0)" in text
    assert "comma-separated seeds (default: 0)" in text and "(default: 0.5, 1.0)" in text
    assert "first N images (default: all)" in text and text.count("(default: all)") == 1
    assert "a share in % (default: 0.5)" in text  # a % in the help is text, not a format
    assert "--no-progress hide progress bars" in text
    assert "--normalize, --no-normalize standardise the observations (default: False)" in text


def test_add_command_remembers_its_dataclass():
    parser = argparse.ArgumentParser(prog="toy")
    sub = parser.add_subparsers(dest="cmd")
    add_command(sub, "run", Toy, lambda ns: 0, help="run the toy", skip=("share",))
    ns = parser.parse_args(["run", "p"])
    assert ns.args_class is Toy and ns.func(ns) == 0
    assert "share" not in vars(ns)
