"""Every command is generated from its arguments dataclass: no hand-written option, defaults written once."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from abn_gym import tables
from agents.app import budget_sweep, conditioned_eval, known_fronts, train_morl
from agents.app.cli import build_parser
from supernets.foundation.cliargs import default_of, option_strings

ROOT = Path(__file__).resolve().parents[3]
HELPER = ROOT / "supernets" / "foundation" / "cliargs.py"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[tuple, argparse.ArgumentParser]:
    """Every leaf command of a parser, by its words (``("supernet", "eval")``)."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, (*path, name)))
    return found or {path: parser}


COMMANDS = {
    **{("abn-gym", *words): p for words, p in _commands(build_parser()).items()},
    ("python -m abn_gym.tables",): tables.build_parser(),
    ("python -m agents.app.budget_sweep",): budget_sweep.build_parser(),
    ("python -m agents.app.known_fronts",): known_fronts.build_parser(),
    ("python -m agents.app.train_morl",): train_morl.build_parser(),
    ("python -m agents.app.conditioned_eval",): conditioned_eval.build_parser(),
}


def test_every_command_is_listed():
    words = {" ".join(w[1:]) for w in COMMANDS if w[0] == "abn-gym"}
    expected = {"train", "bench", "static-search", "validate", "perf", "zoo", "train-escalation", "levers"}
    assert expected | {f"supernet {c}" for c in ("train", "eval", "publish", "sweep")} == words


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_each_option_is_a_field_of_the_commands_dataclass(words):
    parser = COMMANDS[words]
    cls = parser.get_default("args_class")
    assert dataclasses.is_dataclass(cls), f"{' '.join(words)} is not generated from a dataclass"
    fields = {f.name: f for f in dataclasses.fields(cls)}
    options = [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]
    for action in options:
        assert action.dest in fields, f"{' '.join(words)}: {action.option_strings or action.dest} is no field"
        expected = option_strings(fields[action.dest])
        if isinstance(action, argparse.BooleanOptionalAction):
            expected = (*expected, expected[0].replace("--", "--no-", 1))
        assert tuple(action.option_strings) == expected
        assert action.help, f"{' '.join(words)}: {action.dest} has no help"
    # And the other way: every field is an option, but those the command fills in itself.
    assert {a.dest for a in options} <= set(fields)


@pytest.mark.parametrize("words", sorted(COMMANDS), ids=" ".join)
def test_each_default_is_the_dataclass_default(words):
    parser = COMMANDS[words]
    cls = parser.get_default("args_class")
    for f in dataclasses.fields(cls):
        action = next((a for a in parser._actions if a.dest == f.name), None)
        if action is None or action.required or default_of(f) is dataclasses.MISSING:
            continue
        assert action.default == default_of(f), f"{' '.join(words)}: --{f.name} defaults differ"


def test_no_option_is_written_by_hand():
    """``add_argument`` is called in the helper only: every other parser is generated."""
    calls = []
    for package in ("supernets", "abn_gym", "agents"):
        for path in (ROOT / package).rglob("*.py"):
            if path == HELPER:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert calls == []


def test_help_of_every_command_renders():
    for words, parser in COMMANDS.items():
        text = parser.format_help()
        assert "usage:" in text, words


def test_the_python_m_scripts_refuse_bad_values_by_option(capsys):
    with pytest.raises(SystemExit) as stop:
        budget_sweep.main(["model.zip", "--budgets", "0.1,much"])
    assert stop.value.code == 2
    assert "argument --budgets: expected comma-separated numbers, got '0.1,much'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        tables.main(["--env", "Nope-v0", "--limit", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "error: unknown env id 'Nope-v0'" in err[0]
