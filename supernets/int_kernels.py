"""Exact integer kernels for the frozen path's convolution of integer codes.

:meth:`supernets.layers.SwitchableConv2d.run_frozen` convolves integer activation codes with
integer weight codes, both held as float32. :func:`conv_codes` is that convolution: float32
``F.conv2d``, or, where the tuner finds it faster, an int8 kernel with the same result bit for bit:

* ``onednn``: oneDNN's u8 x s8 convolution (``torch.ops.onednn.qconv2d_pointwise``, VNNI on
  x86), any kernel, stride and groups, channels-last, with a float32 output. Unsigned codes up
  to 255 go in as uint8; signed codes as ``code + 128`` with zero point 128 (oneDNN subtracts
  ``128 * sum(w)`` per output channel and pads with the zero point, so padding stays code 0).
* ``int_mm``: 1x1, stride-1 convs as one ``torch._int_mm`` (int8 x int8 -> int32) over the
  channels-last rows; unsigned 8-bit codes are shifted by -128 and corrected by ``128 * sum(w)``.

Exactness: the integer kernels accumulate exactly in int32 and convert to float32 exactly; the
float32 kernel is exact when every partial sum stays below 2**24 in magnitude, which
``max|code| * max_c sum|w_c| < 2**24`` guarantees for any input and any summation order. A layer
whose weights do not meet that bound keeps the float32 kernel, so where an integer kernel runs,
its output equals the float32 one bit for bit for every finite input (the tests compare the
bits, zero windows included: a float sum could in principle give -0.0 where an integer gives
+0.0). Before choosing an integer kernel for a shape the tuner also checks it against the
float32 one on random codes at the layer's range, so a CPU whose int8 path is not exact (oneDNN's
int8 kernels without VNNI may saturate or scale the weights) keeps float32.

Choosing: in mode ``auto`` (the default) the first call for a (layer, input shape) looks up the choice for its
shape (batch rounded up to a power of two, channels, size, kernel, stride, groups, code range);
an unknown shape is timed once, float32 against each integer kernel, and the fastest exact one
wins if it is at least :data:`MARGIN` faster. Choices are kept in memory and in
``$XDG_CACHE_HOME/abn_gym/int-kernels.json`` (or ``$ABN_INT_KERNELS_CACHE``), per CPU, torch
version and thread count, written atomically. Batches under :data:`MIN_BATCH` rows always run
float32. Mode ``force`` runs an integer kernel wherever one applies (tests); ``off`` is float32
everywhere. The mode comes from ``ABN_INT_KERNELS`` at import (``0``/``off``, ``1``/``auto``,
``force``), or from :func:`set_mode` / :func:`using`.

Benchmark: ``python -m supernets.int_kernels_bench --batch 256`` prints a markdown table per layer
shape of ResNet-20 and mobilenetv2-tiny, and times a frozen ResNet-20 forward with the kernels
on and off.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.weak import WeakIdKeyDictionary

ENV = "ABN_INT_KERNELS"
"""Environment variable that sets the mode at import: ``0``/``off``, ``1``/``auto``, ``force``."""
CACHE_ENV = "ABN_INT_KERNELS_CACHE"
"""Environment variable naming the JSON file of tuned choices (default under ``$XDG_CACHE_HOME``)."""
MODES = ("off", "auto", "force")
DEFAULT_MODE = "auto"
MIN_BATCH = 8
"""Smaller batches always run the float32 kernel (tuning them is not worth it)."""
MARGIN = 0.10
"""An integer kernel must be this much faster (a fraction of the float32 time) to be chosen."""
EXACT_LIMIT = 2**24
KERNELS = ("onednn", "int_mm")

_ALIASES = {
    "0": "off",
    "false": "off",
    "no": "off",
    "1": "auto",
    "on": "auto",
    "true": "auto",
    "yes": "auto",
}


def _parse_mode(value: str | None) -> str:
    if value is None or not value.strip():
        return DEFAULT_MODE
    v = value.strip().lower()
    v = _ALIASES.get(v, v)
    if v not in MODES:
        raise ValueError(f"{ENV}={value!r}: choose 0/off, 1/auto or force")
    return v


def _mode_from_env() -> str:
    try:
        return _parse_mode(os.environ.get(ENV))
    except ValueError as exc:  # a typo must not break importing the package: float32, and say so
        warnings.warn(f"{exc}; running the float32 kernels", RuntimeWarning, stacklevel=2)
        return "off"


_mode = _mode_from_env()
# Per mode, per weight-codes tensor (dropped with it): {(shape, stride, padding, groups, range): kernel or None}.
_plans: dict[str, WeakIdKeyDictionary] = {"auto": WeakIdKeyDictionary(), "force": WeakIdKeyDictionary()}
_choices: dict[str, dict[str, dict]] = {}  # per machine key: tuned shapes, loaded lazily


def mode() -> str:
    """The current mode: ``off``, ``auto`` or ``force``."""
    return _mode


def set_mode(new: str) -> str:
    """Set the mode (``off``, ``auto``, ``force``, or an alias such as ``0``/``1``); returns the old one."""
    global _mode
    old, _mode = _mode, _parse_mode(new)
    return old


@contextlib.contextmanager
def using(new: str) -> Iterator[None]:
    """Run a block in mode ``new``, then restore the previous mode."""
    old = set_mode(new)
    try:
        yield
    finally:
        set_mode(old)


def conv_codes(
    codes: torch.Tensor,
    weight_codes: torch.Tensor,
    stride: int,
    padding: int,
    groups: int,
    act_range: tuple[int, int] | None = None,
) -> torch.Tensor:
    """``F.conv2d(codes, weight_codes, stride=stride, padding=padding, groups=groups)``, possibly in int8.

    ``codes`` and ``weight_codes`` hold integers as float32; ``act_range`` is the (qmin, qmax)
    the codes were clamped to (without it, or in mode ``off``, the float32 kernel runs).
    The result is bit-identical whichever kernel runs (see the module docstring).
    """
    if _mode == "off" or act_range is None or (_mode == "auto" and codes.shape[0] < MIN_BATCH):
        return F.conv2d(codes, weight_codes, stride=stride, padding=padding, groups=groups)
    plans = _plans[_mode]
    per_weight = plans.get(weight_codes)
    if per_weight is None:
        per_weight = plans[weight_codes] = {}
    key = (codes.shape, stride, padding, groups, act_range)
    kernel = per_weight.get(key, plans)  # plans: a sentinel for "not planned yet"
    if kernel is plans:
        kernel = per_weight[key] = _plan(codes, weight_codes, stride, padding, groups, act_range, per_weight)
    if kernel is None:
        return F.conv2d(codes, weight_codes, stride=stride, padding=padding, groups=groups)
    return kernel(codes)


# Integer kernels ----------------------------------------------------------------------------
def code_kind(act_range: tuple[int, int]) -> str | None:
    """How codes in ``act_range`` become bytes: ``u7`` (0..127), ``s8`` (-128..127), ``u8`` (0..255)."""
    qmin, qmax = act_range
    if qmin >= 0 and qmax <= 127:
        return "u7"
    if qmin >= -128 and qmax <= 127:
        return "s8"
    if qmin >= 0 and qmax <= 255:
        return "u8"
    return None


def exact_bound(weight_codes: torch.Tensor, act_range: tuple[int, int]) -> int:
    """The largest magnitude any partial sum of this conv can reach: ``max|code| * max_c sum|w_c|``."""
    l1 = weight_codes.detach().abs().reshape(weight_codes.shape[0], -1).sum(1).max()
    return int(l1) * max(abs(act_range[0]), abs(act_range[1]))


def applicable(weight_codes: torch.Tensor, act_range: tuple[int, int]) -> bool:
    """True when an integer kernel gives exactly the float32 result for this weight and code range."""
    if weight_codes.dim() != 4 or weight_codes.dtype != torch.float32 or weight_codes.device.type != "cpu":
        return False
    if code_kind(act_range) is None or weight_codes.numel() == 0:
        return False
    w = weight_codes.detach()
    if float(w.min()) < -128 or float(w.max()) > 127 or not bool((w == w.round()).all()):
        return False
    return exact_bound(w, act_range) < EXACT_LIMIT


def _to_uint8(codes: torch.Tensor, kind: str) -> torch.Tensor:
    # float32 -> int8 is vectorized (float32 -> uint8 is not: 5x slower); the layout is kept.
    if kind == "u7":
        return codes.to(torch.int8).view(torch.uint8)
    if kind == "s8":  # two's complement with the top bit flipped: code + 128
        return codes.to(torch.int8).view(torch.uint8).bitwise_xor_(128)
    return codes.to(torch.int16).to(torch.uint8)  # u8: 0..255 does not fit int8


class OneDNNConv:
    """oneDNN's u8 x s8 -> f32 convolution of the codes (zero point 128 for signed codes)."""

    name = "onednn"

    def __init__(
        self, weight_codes: torch.Tensor, stride: int, padding: int, groups: int, act_range: tuple[int, int]
    ) -> None:
        kind = code_kind(act_range)
        assert kind is not None, "check applicable() first"
        self.kind = kind
        self.zero_point = 128 if kind == "s8" else 0
        self.stride, self.padding, self.groups = [stride] * 2, [padding] * 2, groups
        c_out = weight_codes.shape[0]
        w8 = weight_codes.detach().to(torch.int8)
        self.packed = torch.ops.onednn.qconv_prepack(
            w8, torch.ones(c_out), 1.0, self.zero_point, self.stride, self.padding, [1, 1], groups, None
        )
        self.w_scale = torch.ones(c_out, dtype=torch.float64)
        self.w_zero_point = torch.zeros(c_out, dtype=torch.int64)

    def __call__(self, codes: torch.Tensor) -> torch.Tensor:
        return torch.ops.onednn.qconv2d_pointwise(
            _to_uint8(codes, self.kind),
            1.0,
            self.zero_point,
            self.packed,
            self.w_scale,
            self.w_zero_point,
            None,
            self.stride,
            self.padding,
            [1, 1],
            self.groups,
            1.0,
            0,
            torch.float32,
            "none",
            [],
            "",
        )


class IntMMConv:
    """A 1x1, stride-1 conv as ``torch._int_mm`` over the channels-last rows (N*H*W, C_in)."""

    name = "int_mm"

    @staticmethod
    def fits(weight_codes: torch.Tensor, stride: int, padding: int, groups: int) -> bool:
        return weight_codes.shape[2:] == (1, 1) and stride == 1 and padding == 0 and groups == 1

    def __init__(
        self, weight_codes: torch.Tensor, stride: int, padding: int, groups: int, act_range: tuple[int, int]
    ) -> None:
        kind = code_kind(act_range)
        assert kind is not None and self.fits(weight_codes, stride, padding, groups), "check applicable() first"
        self.kind = kind
        c_out, c_in = weight_codes.shape[:2]
        self.w = weight_codes.detach().reshape(c_out, c_in).t().to(torch.int8).contiguous()  # (C_in, C_out)
        # u8 codes go in as code - 128: add back 128 * sum over C_in of w, per output channel.
        self.correction = 128 * self.w.sum(0, dtype=torch.int32) if kind == "u8" else None

    def __call__(self, codes: torch.Tensor) -> torch.Tensor:
        n, c, h, w = codes.shape
        if self.kind == "u8":
            a = codes.to(torch.int16).to(torch.uint8).bitwise_xor_(128).view(torch.int8)
        else:
            a = codes.to(torch.int8)
        acc = torch._int_mm(a.permute(0, 2, 3, 1).reshape(n * h * w, c), self.w)
        if self.correction is not None:
            acc.add_(self.correction)
        return acc.to(torch.float32).view(n, h, w, -1).permute(0, 3, 1, 2)


_KERNEL_CLASSES: dict[str, type[OneDNNConv] | type[IntMMConv]] = {"onednn": OneDNNConv, "int_mm": IntMMConv}


def candidates(weight_codes: torch.Tensor, stride: int, padding: int, groups: int) -> list[str]:
    """The integer kernels that can run this conv, in order of preference (``force`` takes the first)."""
    names = []
    if hasattr(torch.ops, "onednn") and torch.backends.mkldnn.is_available():
        with contextlib.suppress(AttributeError, RuntimeError):
            torch.ops.onednn.qconv2d_pointwise  # noqa: B018  # raises where this build lacks it
            names.append("onednn")
    if hasattr(torch, "_int_mm") and IntMMConv.fits(weight_codes, stride, padding, groups):
        names.append("int_mm")
    return names


def make_kernel(
    name: str, weight_codes: torch.Tensor, stride: int, padding: int, groups: int, act_range: tuple[int, int]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Integer kernel ``name`` (``onednn`` or ``int_mm``) for this conv; callers check :func:`applicable`."""
    return _KERNEL_CLASSES[name](weight_codes, stride, padding, groups, act_range)


def _plan(
    codes: torch.Tensor,
    weight_codes: torch.Tensor,
    stride: int,
    padding: int,
    groups: int,
    act_range: tuple[int, int],
    kernels: dict,
) -> Callable[[torch.Tensor], torch.Tensor] | None:
    # The kernel for this input shape, or None for float32; ``kernels`` shares each built
    # (weight-packing) kernel of this weight across input shapes.
    if codes.dim() != 4 or codes.dtype != torch.float32 or codes.device.type != "cpu" or codes.numel() == 0:
        return None
    if not applicable(weight_codes, act_range):
        return None
    names = candidates(weight_codes, stride, padding, groups)
    if not names:
        return None
    if _mode == "force":
        choice = names[0]
    else:
        bucket = 1 << (codes.shape[0] - 1).bit_length()
        choice = choose(bucket, codes.shape[2], codes.shape[3], weight_codes, stride, padding, groups, act_range)
        if choice not in names:  # fp32 (or a kernel this build lacks)
            return None
    key = (choice, stride, padding, groups, act_range)
    if key not in kernels:
        kernels[key] = make_kernel(choice, weight_codes, stride, padding, groups, act_range)
    return kernels[key]


# Tuning --------------------------------------------------------------------------------------
@functools.cache
def _cpuinfo(field: str) -> str | None:
    """The value of the first ``field`` line of /proc/cpuinfo, or None (no such file, as on macOS, or no such line)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(field)), None)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one, else what ``platform`` says)."""
    return _cpuinfo("model name") or platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The CPU's ISA extensions that matter to int8 kernels (avx2, avx512f, the VNNIs, AMX)."""
    have = set((_cpuinfo("flags") or "").split())
    return "+".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in have)


def machine_key() -> str:
    """What a tuned choice depends on besides the shape: CPU, ISA, torch version, threads."""
    return f"{cpu_model()} [{cpu_flags()}] torch {torch.__version__} threads {torch.get_num_threads()}"


def cache_path() -> Path:
    """The JSON file of tuned choices."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "abn_gym" / "int-kernels.json"


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _machine_choices() -> dict[str, dict]:
    key = machine_key()
    if key not in _choices:
        entry = _read_cache().get(key, {})
        _choices[key] = entry if isinstance(entry, dict) else {}
    return _choices[key]


def remember(key: str, record: dict) -> None:
    """Hold a :func:`time_shape` record as the choice for shape ``key`` in memory (not in the file)."""
    _machine_choices()[key] = record


def _persist(key: str, record: dict) -> None:
    from supernets.foundation.files import atomic_write_bytes  # lazy: only tuning writes

    data = _read_cache()  # merge: another process may have tuned other shapes meanwhile
    machine = data.setdefault(machine_key(), {})
    if not isinstance(machine, dict):
        machine = data[machine_key()] = {}
    machine[key] = record
    with contextlib.suppress(OSError):  # OutputWriteError is an OSError: a read-only cache is no error
        atomic_write_bytes(cache_path(), (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def reset_choices() -> None:
    """Forget the tuned choices held in memory (the next lookup reads the cache file again)."""
    _choices.clear()
    for plans in _plans.values():
        plans.clear()


def shape_key(
    batch: int, h: int, w: int, weight_codes: torch.Tensor, stride: int, padding: int, groups: int, act_range
) -> str:
    c_out, c_in_g, k, _ = weight_codes.shape
    kind = code_kind(act_range)
    return f"n{batch} c{c_in_g * groups}>{c_out} {h}x{w} k{k} s{stride} p{padding} g{groups} {kind}"


def choose(
    batch: int,
    h: int,
    w: int,
    weight_codes: torch.Tensor,
    stride: int,
    padding: int,
    groups: int,
    act_range: tuple[int, int],
) -> str:
    """The tuned kernel (``fp32`` or an integer kernel's name) for this shape: cached, or timed now."""
    choices = _machine_choices()
    key = shape_key(batch, h, w, weight_codes, stride, padding, groups, act_range)
    record = choices.get(key)
    if not isinstance(record, dict) or record.get("choice") not in ("fp32", *KERNELS):
        record = time_shape(batch, h, w, weight_codes, stride, padding, groups, act_range)
        choices[key] = record
        _persist(key, record)
    return str(record["choice"])


def _bits(y: torch.Tensor) -> torch.Tensor:
    return y.contiguous(memory_format=torch.channels_last).view(torch.int32)


def time_shape(
    batch: int,
    h: int,
    w: int,
    weight_codes: torch.Tensor,
    stride: int,
    padding: int,
    groups: int,
    act_range: tuple[int, int],
    reps: int = 3,
) -> dict:
    """Time float32 against each integer kernel on random codes of this shape (median ms of ``reps``).

    Returns ``{"choice": name, "ms": {kernel: ms}, "inexact": [kernels that differed]}``; the
    choice is the fastest exact integer kernel if it beats float32 by :data:`MARGIN`, else ``fp32``.
    """
    c_in = weight_codes.shape[1] * groups
    gen = torch.Generator().manual_seed(0)
    codes = torch.randint(act_range[0], act_range[1] + 1, (batch, c_in, h, w), generator=gen, dtype=torch.float32)
    codes = codes.contiguous(memory_format=torch.channels_last)
    fns: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "fp32": lambda x: F.conv2d(x, weight_codes, stride=stride, padding=padding, groups=groups)
    }
    if applicable(weight_codes, act_range):
        for name in candidates(weight_codes, stride, padding, groups):
            fns[name] = make_kernel(name, weight_codes, stride, padding, groups, act_range)
    with torch.inference_mode():
        ref = _bits(fns["fp32"](codes))
        inexact = [name for name, f in fns.items() if name != "fp32" and not torch.equal(_bits(f(codes)), ref)]
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(reps):  # round robin: drift from other load hits every kernel alike
            for name, f in fns.items():
                t = time.perf_counter()
                f(codes)
                times[name].append(time.perf_counter() - t)
    ms = {name: round(statistics.median(ts) * 1e3, 4) for name, ts in times.items()}
    best = min((name for name in ms if name != "fp32" and name not in inexact), key=ms.__getitem__, default=None)
    choice = best if best is not None and ms[best] < (1 - MARGIN) * ms["fp32"] else "fp32"
    return {"choice": choice, "ms": ms, "inexact": inexact}
