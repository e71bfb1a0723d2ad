"""Command-line options generated from dataclasses: every ``abn-gym`` command is one dataclass.

A command's arguments are the fields of its arguments dataclass, each made with :func:`arg`
(its default, written once, and a one-line help text; optionally how the option is spelled).
:func:`add_command` mounts such a dataclass as a sub-command, :func:`add_dataclass_args` adds its
options to any parser, and :func:`dataclass_from_args` builds the dataclass back from the parsed
namespace. The mapping, field to option:

- ``name: T = arg(default, help)`` gives ``--name`` (underscores become dashes) of type ``T``;
  ``T | None`` takes ``T``; the help shows the default unless the help text already says it;
- ``bool`` gives ``--name`` / ``--no-name``; ``action="store_true"`` gives the bare switch, and
  ``action="store_false"`` with ``names=("--no-name",)`` the switch that turns the field off;
- ``list[int]`` / ``list[str]`` / ``list[float]`` take one comma-separated value (``--seeds 0,1,2``);
  ``action="append"`` takes the option once per value instead;
- ``choices``, ``metavar``, ``required``, ``type`` (an argparse converter) and ``names`` (the option
  strings, e.g. a short option ``("-n", "--episodes")``) pass through to argparse; ``positional=True``
  makes the field a positional argument;
- ``parse`` converts the given text after argparse (not the default): a converter that raises the
  project's own errors, so that a mistake it finds is one ``abn-gym: error:`` line.

This module imports nothing from the project: it is part of the floor every package stands on.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_MISSING: Any = dataclasses.MISSING
_SWITCHES = ("store_true", "store_false")
_ITEM_NAMES = {int: "integers", float: "numbers", str: "values"}
"""How a comma-separated list of each item type is named in an error message."""


def arg(
    default: Any = _MISSING,
    help: str = "",
    *,
    names: Sequence[str] = (),
    choices: Sequence[Any] | None = None,
    type: Callable[[str], Any] | None = None,
    parse: Callable[[str], Any] | None = None,
    action: str | None = None,
    positional: bool = False,
    required: bool = False,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that is also a command-line option.

    Args:
        default: the field's default, written here once (a list is copied for each instance);
            leave it out for a positional or required argument.
        help: one line for ``--help``; ``(default: ...)`` is added unless the text already says it.
        names: the option strings, e.g. ``("-n", "--episodes")`` (default: ``--field-name``).
        choices: the values the option accepts.
        type: argparse converter of the given text (default: from the field's type).
        parse: converter applied by :func:`dataclass_from_args` to the given text; its errors are
            the caller's (e.g. a project error printed as one line), not argparse's.
        action: ``"store_true"``, ``"store_false"`` or ``"append"`` (default: from the field's type).
        positional: a positional argument instead of an option.
        required: the option must be given.
        metavar: the value's name in ``--help``.
    """
    metadata = {
        "help": help,
        "names": tuple(names),
        "choices": None if choices is None else tuple(choices),
        "type": type,
        "parse": parse,
        "action": action,
        "positional": positional,
        "required": required,
        "metavar": metavar,
    }
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: value.copy(), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _base_type(tp: Any) -> Any:
    """``T`` of ``T | None``."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0]
    return tp


def comma_list(item: Callable[[str], T] = str, what: str = "values") -> Callable[[str], list[T]]:  # type: ignore[assignment]
    """An argparse converter of comma-separated ``item`` values (empty entries are skipped)."""

    def convert(text: str) -> list[T]:
        try:
            return [item(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {what}, got {text!r}") from None

    convert.__name__ = f"comma-separated {what}"
    return convert


def positive_int(text: str) -> int:
    """argparse converter: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def default_of(f: dataclasses.Field) -> Any:
    """A field's default value (``MISSING`` when it has none)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))  # a space, so that --help can wrap a long list
    return str(value)


def option_strings(f: dataclasses.Field) -> tuple[str, ...]:
    """The option strings a field is given (empty for a positional argument)."""
    if f.metadata.get("positional"):
        return ()
    return f.metadata.get("names") or ("--" + f.name.replace("_", "-"),)


def add_dataclass_args(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one option (or positional argument) per field of dataclass ``cls``, as :func:`arg` describes.

    Args:
        parser: the parser to add to.
        cls: the arguments dataclass.
        skip: fields that are not options (the command sets them itself).
    """
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        tp = _base_type(hints[f.name])
        default = default_of(f)
        action = meta.get("action")
        kwargs: dict[str, Any] = {}
        text = meta.get("help", "")
        if tp is bool and action is None:
            action = argparse.BooleanOptionalAction
        elif action not in _SWITCHES:
            item = typing.get_args(tp)[0] if typing.get_origin(tp) is list else None
            convert = meta.get("type")
            if meta.get("parse") is not None:
                convert = str  # converted by dataclass_from_args
            elif convert is None and item is not None and action != "append":
                convert = comma_list(item, _ITEM_NAMES.get(item, "values"))
            elif convert is None:
                convert = item if item is not None else tp
            kwargs["type"] = convert
            if meta.get("choices") is not None:
                kwargs["choices"] = meta["choices"]
            if meta.get("metavar") is not None:
                kwargs["metavar"] = meta["metavar"]
        if action is not None:
            kwargs["action"] = action
        shows_default = (
            default is not _MISSING
            and default is not None
            and default != []
            and default != ""
            and action not in (*_SWITCHES, "append")
            and "(default" not in text
        )
        text = text.replace("%", "%%")  # argparse formats help with %
        if shows_default and action is argparse.BooleanOptionalAction:
            text += " (default: %(default)s)"  # in this form, Python 3.10's BooleanOptionalAction adds no second one
        elif shows_default:
            text += f" (default: {_shown(default)})".replace("%", "%%")
        kwargs["help"] = text
        if meta.get("positional"):
            if default is not _MISSING:
                kwargs.update(nargs="?", default=default)
            parser.add_argument(f.name, **kwargs)
            continue
        if default is not _MISSING:
            kwargs["default"] = default
        if meta.get("required") or default is _MISSING:
            kwargs["required"] = True
        parser.add_argument(*option_strings(f), dest=f.name, **kwargs)


def dataclass_from_args(cls: type[T], ns: argparse.Namespace, **overrides: Any) -> T:
    """Build ``cls`` from the parsed options that match its fields (``overrides`` win).

    A field with ``parse`` gets its given text converted here, so the converter's errors are the caller's.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in vars(ns).items() if k in fields}
    for name, value in values.items():
        parse = fields[name].metadata.get("parse")
        if parse is not None and isinstance(value, str):
            values[name] = parse(value)
    values.update(overrides)
    return cls(**values)


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    cls: type,
    func: Callable[[argparse.Namespace], int],
    help: str,
    description: str | None = None,
    skip: tuple[str, ...] = (),
) -> argparse.ArgumentParser:
    """Mount dataclass ``cls`` as the sub-command ``name``, run by ``func(namespace)``.

    The parser remembers ``cls`` (``args_class``), so that a test can check every option maps to a field.

    Args:
        sub: the parser's sub-commands (``parser.add_subparsers()``).
        name: the command's name.
        cls: its arguments dataclass.
        func: what runs it; gets the parsed namespace, returns the exit status.
        help: one line for the list of commands.
        description: the command's own ``--help`` text (default: ``help``).
        skip: fields that are not options (the command sets them itself).
    """
    parser = sub.add_parser(name, help=help, description=description or help)
    add_dataclass_args(parser, cls, skip)
    parser.set_defaults(func=func, args_class=cls)
    return parser


def dataclass_parser(cls: type, **kwargs: Any) -> argparse.ArgumentParser:
    """A stand-alone parser (a ``python -m`` script) of dataclass ``cls``; ``kwargs`` go to ``ArgumentParser``.

    Like :func:`add_command`, the parser remembers ``cls`` as ``args_class``.
    """
    parser = argparse.ArgumentParser(**kwargs)
    add_dataclass_args(parser, cls)
    parser.set_defaults(args_class=cls)
    return parser


def add_version(parser: argparse.ArgumentParser, text: str) -> None:
    """``--version``: print ``text`` and exit."""
    parser.add_argument("--version", action="version", version=text)


def add_imports(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE`` (repeatable) into ``imports``: modules of the user's to import before the command runs."""
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE first (repeatable): a module of yours that registers a network family",
    )
