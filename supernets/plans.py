"""Architecture plans: what a family's config says about its layers, checked before anything is built.

A family is an :class:`ArchConfig` (a frozen dataclass of its fields) whose :meth:`~ArchConfig.plan`
returns a :class:`Plan`: the fixed stem and the switchable layers in step order
(:class:`LayerPlan`). :func:`check_plan` refuses a plan whose layers do not fit together, naming
the layer; :class:`supernets.supernet.Supernet` builds the network from a checked plan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import ClassVar

from supernets.bitops import conv_out
from supernets.foundation.errors import UsageError

BIT_CHOICES: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
"""Every bit-width the shipped supernets are trained for."""

SHORTCUTS = ("A", "B")


@dataclass(frozen=True)
class StemPlan:
    """The fixed 8-bit stem: a conv + BN + ReLU, then an optional 3x3/2 max-pool."""

    channels: int
    kernel: int = 3
    stride: int = 1
    pool: bool = False


@dataclass(frozen=True)
class LayerPlan:
    """One switchable layer of a family's plan (its input channels follow from the layer before).

    Args:
        name: the layer's name in BitOps tables and cards (e.g. ``stage1.block1.conv1``).
        c_out: output channels.
        kernel: square kernel size (padding ``kernel // 2``).
        stride: convolution stride.
        groups: convolution groups; equal to the input channels for a depthwise conv.
        kind: what the layer is, for descriptors: conv, depthwise, expand, project, pointwise.
        relu: apply a ReLU after BN (and the residual); False for a linear bottleneck.
        opens: None, or how the residual that starts at this layer's input is shaped ("A" or "B").
        closes: add the pending residual to this layer's output before the activation.
        pool: max-pool kernel and stride after the activation (0: none).
        shortcut_name: name of the 1x1 projection an ``opens="B"`` layer may need.
    """

    name: str
    c_out: int
    kernel: int = 3
    stride: int = 1
    groups: int = 1
    kind: str = "conv"
    relu: bool = True
    opens: str | None = None
    closes: bool = False
    pool: int = 0
    shortcut_name: str = ""


@dataclass(frozen=True)
class Plan:
    """A family's whole layout: the stem and the switchable layers, in step order."""

    stem: StemPlan
    layers: tuple[LayerPlan, ...]


@dataclass(frozen=True)
class ArchConfig:
    """Base of every family's architecture config: a frozen dataclass that knows its :class:`Plan`.

    A family subclasses it, sets ``family`` (the name cards record) and implements :meth:`plan`;
    its fields are what arch-config files hold. Tuples are stored in cards as lists.
    """

    family: ClassVar[str] = ""
    in_channels: int = 1
    num_classes: int = 10
    input_size: int = 28
    bit_choices: tuple[int, ...] = BIT_CHOICES

    def plan(self) -> Plan:
        """The layers this config builds (implemented by each family)."""
        raise NotImplementedError(f"{type(self).__name__} must implement plan() (see supernets.supernet.Plan)")

    def as_dict(self) -> dict:
        """JSON-friendly form (tuples become lists), with the family's name."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        return {"family": self.family, **d}

    @classmethod
    def from_dict(cls, d: dict):
        """Inverse of :meth:`as_dict` (a ``family`` key, if any, is checked by the caller)."""
        d = {k: v for k, v in d.items() if k != "family"}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})  # type: ignore[arg-type]

    @classmethod
    def field_names(cls) -> list[str]:
        """The fields an arch-config file may set."""
        return [f.name for f in fields(cls)]

    def require_positive(self, *names: str) -> None:
        """Raise a :class:`UsageError` naming the first of the fields ``names`` that is not a positive int."""
        for name in names:
            _positive(name, getattr(self, name))

    def validate(self):
        """Return self, or raise a :class:`UsageError` naming what cannot build a network."""
        self.require_positive("in_channels", "num_classes", "input_size")
        bits = self.bit_choices
        if not bits or len(set(bits)) != len(bits) or any(isinstance(b, bool) or b not in range(2, 9) for b in bits):
            raise UsageError(f"architecture field bit_choices={list(bits)}: expected distinct ints from 2 to 8")
        check_plan(self.plan(), self.in_channels, self.input_size)
        return self

    def __str__(self) -> str:
        return f"{self.family} {json.dumps(self.as_dict())}"


def _positive(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"architecture field {name}={value!r}: expected a positive int")


def check_plan(plan: Plan, in_channels: int, input_size: int) -> list[int]:
    """Raise a :class:`UsageError` naming the first inconsistent layer; returns the sizes after each layer.

    Checked: positive channels, kernels, strides; groups dividing both channel counts; a residual
    opened before it is closed, closed only when open, and none left open; a residual whose
    shapes differ only in ways its ``opens`` kind can fix; sizes that stay above 1x1.
    """
    if not isinstance(plan, Plan) or not isinstance(plan.stem, StemPlan):
        raise UsageError(f"plan() must return a supernets.supernet.Plan(stem=StemPlan(...), layers=...), got {plan!r}")
    if not plan.layers:
        raise UsageError("the plan has no switchable layers: list at least one LayerPlan")
    stem = plan.stem
    for name in ("channels", "kernel", "stride"):
        _positive(f"stem {name}", getattr(stem, name))
    size = conv_out(input_size, stem.kernel, stem.stride, stem.kernel // 2)
    trace = [input_size, size]
    if stem.pool:
        size = conv_out(size, 3, 2, 1)
        trace.append(size)
    c_in = stem.channels
    sizes = []
    pending: list | None = None  # [opening layer, kind, c_in, size at the open, stride so far]
    for i, layer in enumerate(plan.layers):
        where = f"layer {i} ({getattr(layer, 'name', '?')!r})"
        if not isinstance(layer, LayerPlan):
            raise UsageError(f"layer {i} of the plan is a {type(layer).__name__}, not a supernets.supernet.LayerPlan")
        for name in ("c_out", "kernel", "stride", "groups"):
            value = getattr(layer, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{where}: {name}={value!r}, expected a positive int")
        if c_in % layer.groups or layer.c_out % layer.groups:
            raise UsageError(
                f"{where}: groups={layer.groups} must divide its input channels ({c_in}) and output channels "
                f"({layer.c_out})"
            )
        if isinstance(layer.pool, bool) or not isinstance(layer.pool, int) or layer.pool < 0:
            raise UsageError(f"{where}: pool={layer.pool!r}, expected 0 (none) or a max-pool size")
        if layer.opens is not None:
            if layer.opens not in SHORTCUTS:
                raise UsageError(
                    f"{where}: opens={layer.opens!r}, expected None, 'A' (parameter-free) or 'B' (1x1 conv)"
                )
            if pending is not None:
                raise UsageError(f"{where} opens a residual while the one opened at {pending[0]} is still open")
            pending = [where, layer.opens, c_in, size, 1]
        if layer.closes and pending is None:
            raise UsageError(f"{where} closes a residual that no earlier layer opened (set opens= on its first layer)")
        out = conv_out(size, layer.kernel, layer.stride, layer.kernel // 2)
        if pending is not None:
            pending[4] *= layer.stride
        if layer.closes:
            opened, kind, c_open, size_open, stride = pending  # type: ignore[misc]
            if -(-size_open // stride) != out or (kind == "A" and layer.c_out < c_open):
                raise UsageError(
                    f"{where} closes the residual opened at {opened}, but its output ({layer.c_out}x{out}x{out}) "
                    f"cannot be reached from that input ({c_open}x{size_open}x{size_open}) by "
                    f"{'subsampling and zero-padding' if kind == 'A' else 'a strided 1x1 conv'}"
                )
            if kind == "A" and (layer.c_out - c_open) % 2:
                raise UsageError(
                    f"{where}: a parameter-free ('A') residual pads channels equally on both sides, so "
                    f"{c_open} -> {layer.c_out} channels must differ by an even number; use opens='B'"
                )
            pending = None
        if layer.pool:
            if pending is not None:
                raise UsageError(f"{where} pools inside the residual opened at {pending[0]}: pool after it closes")
            out = conv_out(out, layer.pool, layer.pool, 0)
        trace.append(out)
        if out < 1 or (out == 1 and input_size > 1 and i < len(plan.layers) - 1 and plan.layers[i + 1].kernel > 1):
            shown = " -> ".join(f"{n}x{n}" for n in trace)
            raise UsageError(
                f"input_size={input_size}: the stem and layers shrink it to {max(out, 0)}x{max(out, 0)} at {where} "
                f"({shown}){', where a 3x3 conv reads only its centre weight' if out == 1 else ''}; give a larger "
                "input_size, or fewer strides or pools"
            )
        sizes.append(out)
        c_in, size = layer.c_out, out
    if pending is not None:
        raise UsageError(f"the residual opened at {pending[0]} is never closed: set closes=True on its last layer")
    if not plan.layers[-1].relu:
        raise UsageError(
            f"the last layer ({plan.layers[-1].name!r}) has relu=False, but the classifier quantizes its input as "
            "unsigned: end the plan with a layer that has a ReLU"
        )
    return sizes
