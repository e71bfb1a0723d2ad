"""Network families: the registry that maps a card's ``family`` to its architecture config.

A family is an :class:`~supernets.supernet.ArchConfig` subclass: its fields are what an arch
config file holds, and its ``plan()`` lists the layers. The built-in families are ``resnet``
(the default, for cards that name none), ``mobilenetv2`` and ``plain``. A user's own family is
registered from her own module, with no edit to this package::

    # my_family.py
    from dataclasses import dataclass
    from typing import ClassVar
    from supernets.families import register_family
    from supernets.supernet import ArchConfig, LayerPlan, Plan, StemPlan

    @register_family
    @dataclass(frozen=True)
    class TinyConfig(ArchConfig):
        family: ClassVar[str] = "tiny"
        width: int = 8

        def plan(self) -> Plan:
            layers = (LayerPlan("conv1", self.width), LayerPlan("conv2", 2 * self.width))
            return Plan(StemPlan(self.width, kernel=5, stride=2), layers)

Importing ``my_family`` registers it (``abn-gym --import my_family ...`` on the command line);
an arch config file then says ``family = "tiny"``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path

from supernets.foundation.errors import CheckpointError, UsageError
from supernets.mobilenetv2 import MobileNetV2Config
from supernets.plain import PlainConfig
from supernets.resnet import ResNetConfig
from supernets.supernet import ArchConfig, Supernet

DEFAULT_FAMILY = "resnet"
"""The family of a card or arch config that names none (every card written before families)."""

_FAMILIES: dict[str, type[ArchConfig]] = {}


def register_family(config_cls: type[ArchConfig]) -> type[ArchConfig]:
    """Register an :class:`ArchConfig` subclass under its ``family`` name; returns it (a decorator).

    Registering the same class again is a no-op (a module imported twice); another class under
    a taken name is refused.
    """
    if not (isinstance(config_cls, type) and issubclass(config_cls, ArchConfig)):
        raise UsageError(
            f"register_family takes an ArchConfig subclass (a frozen dataclass with plan()), not {config_cls!r}"
        )
    if not dataclasses.is_dataclass(config_cls):
        raise UsageError(f"{config_cls.__name__} must be a @dataclass(frozen=True): its fields are the arch config's")
    name = config_cls.family
    if not isinstance(name, str) or not name:
        raise UsageError(f"{config_cls.__name__} needs a family name: family: ClassVar[str] = 'my-family'")
    known = _FAMILIES.get(name)
    if known is not None and known.__qualname__ != config_cls.__qualname__:
        raise UsageError(f"family {name!r} is already registered by {known.__module__}.{known.__qualname__}")
    _FAMILIES[name] = config_cls
    return config_cls


for _cls in (ResNetConfig, MobileNetV2Config, PlainConfig):
    register_family(_cls)


def families() -> list[str]:
    """Names of every registered family."""
    return sorted(_FAMILIES)


IMPORT_ENV = "ABN_GYM_IMPORT"
"""Environment variable listing (``os.pathsep``-separated) the modules ``--import`` named, so that the
processes a command starts (the bench's workers, ``--jobs``) register the same families."""


def family_config(name: str) -> type[ArchConfig]:
    """The config class of family ``name``, or an error that says how to register it."""
    if name not in _FAMILIES and os.environ.get(IMPORT_ENV):
        # A process started by a command run with --import: register what the parent imported.
        import_family_modules(os.environ[IMPORT_ENV].split(os.pathsep))
    if name not in _FAMILIES:
        raise UsageError(
            f"unknown network family {name!r}; registered: {', '.join(families())}. A family of your own is "
            "registered by importing the module that defines it (abn-gym --import MODULE ..., or `import MODULE` "
            "in Python first; docs/guides/bring-your-own-network.md)"
        )
    return _FAMILIES[name]


def import_family_modules(modules: list[str] | tuple[str, ...]) -> None:
    """Import the user's modules that register families (the CLI's ``--import``), from the current folder too."""
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: a console script does not search the current folder
    if modules:
        known = [m for m in os.environ.get(IMPORT_ENV, "").split(os.pathsep) if m]
        os.environ[IMPORT_ENV] = os.pathsep.join(dict.fromkeys([*known, *modules]))
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UsageError(
                f"--import {module}: {exc}; give an importable module name (on PYTHONPATH or in the current folder)"
            ) from None


def config_from_dict(d: dict, source: str = "the architecture") -> ArchConfig:
    """The config a card's or checkpoint's ``architecture`` dict describes (its ``family`` picks the class)."""
    if not isinstance(d, dict):
        raise CheckpointError(f"{source} is not a dict of architecture fields")
    cls = family_config(str(d.get("family", DEFAULT_FAMILY)))
    known = set(cls.field_names()) | {"family"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise CheckpointError(
            f"{source} has fields {unknown} that family {cls.family!r} does not know; known: {sorted(known)}"
        )
    return cls.from_dict(d)


def build_supernet(config: ArchConfig) -> Supernet:
    """An untrained supernet of ``config``'s family."""
    if not isinstance(config, ArchConfig):
        raise UsageError(
            f"expected an architecture config (an ArchConfig such as supernets.resnet.ResNetConfig), not a "
            f"{type(config).__name__} object: supernets are built from a config, not from a torch module; "
            "describe your network as a family (docs/guides/bring-your-own-network.md)"
        )
    family_config(config.family)  # refuse configs of unregistered families early
    return Supernet(config)


# Named architectures -----------------------------------------------------------------------
ARCHITECTURES: dict[str, ArchConfig] = {
    "resnet20": ResNetConfig(),
    # Narrower ResNet-20s for Fashion-MNIST: less capacity, so low bit-widths cost more accuracy.
    "resnet20-w4": ResNetConfig(stem_channels=4, stage_channels=(4, 8, 16)),
    "resnet20-w6": ResNetConfig(stem_channels=6, stage_channels=(6, 12, 24)),
    "resnet20-w8": ResNetConfig(stem_channels=8, stage_channels=(8, 16, 32)),
    "mobilenetv2-tiny": MobileNetV2Config(),
    "plain-5": PlainConfig(),
}
"""Named architectures that ``abn-gym supernet train --arch`` and the capacity sweep accept."""


def architecture(name: str) -> ArchConfig:
    """The config registered as ``name``, or an error listing the names."""
    if name not in ARCHITECTURES:
        raise UsageError(
            f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}, or describe your own in a "
            "JSON or TOML file and pass --arch-config FILE"
        )
    return ARCHITECTURES[name]


def _toml():
    try:
        # lazy: only TOML configs need it (on Python 3.10 it is the optional tomli package)
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # the same API, on Python 3.10
        except ImportError:
            raise UsageError("a TOML architecture config needs Python 3.11 or the tomli package; use JSON") from None
    return tomllib


def load_arch_config(path: str | os.PathLike) -> ArchConfig:
    """An architecture config from a JSON or TOML file of a family's fields (missing ones keep defaults).

    ``family`` picks the family (default ``resnet``); a family of your own must be registered first.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"architecture config {path} does not exist")
    loads = _toml().loads if p.suffix.lower() == ".toml" else json.loads
    try:
        data = loads(p.read_text())
    except Exception as exc:
        raise UsageError(f"architecture config {path} could not be parsed ({type(exc).__name__}: {exc})") from None
    data = data.get("architecture", data) if isinstance(data, dict) else data
    if not isinstance(data, dict):
        raise UsageError(f"architecture config {path} must hold a table/object of architecture fields")
    cls = family_config(str(data.get("family", DEFAULT_FAMILY)))
    fields = set(cls.field_names())
    unknown = sorted(set(data) - fields - {"family"})
    if unknown:
        raise UsageError(
            f"architecture config {path} has unknown fields {unknown} for family {cls.family!r}; known fields: "
            f"{sorted(fields)}"
        )
    try:
        return cls.from_dict(data).validate()
    except TypeError as exc:
        raise UsageError(f"architecture config {path}: {exc}") from None
