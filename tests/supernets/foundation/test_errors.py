"""One error base class for the project's own errors, each still the builtin callers caught before."""

import pytest

from abn_gym.errors import EnvArgumentError, UnknownEnvArgumentError
from agents.app.validate import ResultsMismatchError
from agents.controllers.base import AgentProtocolError
from supernets.data import DatasetNotFoundError
from supernets.foundation.errors import (
    ABNGymError,
    CheckpointError,
    OutputNotWritableError,
    UnknownNameError,
    UsageError,
    first_line,
)
from supernets.foundation.files import safe_load
from supernets.registry import get_entry


@pytest.mark.parametrize(
    "cls,builtin",
    [
        (CheckpointError, RuntimeError),
        (DatasetNotFoundError, FileNotFoundError),
        (AgentProtocolError, TypeError),
        (ResultsMismatchError, ValueError),
        (UsageError, ValueError),
        (EnvArgumentError, ValueError),
        (UnknownEnvArgumentError, TypeError),
        (UnknownNameError, KeyError),
        (OutputNotWritableError, PermissionError),
    ],
)
def test_every_project_error_has_the_base_and_its_builtin(cls, builtin):
    assert issubclass(cls, ABNGymError) and issubclass(cls, builtin)
    assert str(cls("the message")) == "the message"  # KeyError's quoting is gone


def test_unknown_supernet_is_a_plain_message():
    with pytest.raises(UnknownNameError) as exc:
        get_entry("vgg")
    assert str(exc.value).startswith("unknown supernet 'vgg'; known supernets:")


def test_empty_and_unreadable_checkpoints(tmp_path):
    empty = tmp_path / "e.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        safe_load(empty)
    junk = tmp_path / "j.pt"
    junk.write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="could not be read"):
        safe_load(junk)


def test_first_line_of_an_empty_message_is_the_type():
    assert first_line(EOFError()) == "EOFError"
    assert first_line(ValueError("a\nb")) == "a"
