"""LSQ quantization: learned step sizes with straight-through, gradient-scaled estimators.

Reference: Esser et al., "Learned Step Size Quantization" (ICLR 2020). Weights are quantized
signed (two's-complement range), activations unsigned (they follow a ReLU).
"""

from __future__ import annotations

import math

import torch


def signed_range(bits: int) -> tuple[int, int]:
    """Integer code range of a signed ``bits``-bit quantizer, e.g. (-2, 1) at 2 bits."""
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def unsigned_range(bits: int) -> tuple[int, int]:
    """Integer code range of an unsigned ``bits``-bit quantizer, e.g. (0, 3) at 2 bits."""
    return 0, 2**bits - 1


class _GradScale(torch.autograd.Function):
    # Forward: x exactly. Backward: gradient multiplied by ``scale`` (LSQ's step-size scaling).
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


class _RoundSTE(torch.autograd.Function):
    # Forward: round exactly. Backward: identity (straight-through estimator).
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def _grad_scale(x: torch.Tensor, scale: float) -> torch.Tensor:
    return _GradScale.apply(x, scale)


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return _RoundSTE.apply(x)


def lsq_fake_quant(x: torch.Tensor, step: torch.Tensor, qmin: int, qmax: int, numel: int) -> torch.Tensor:
    """Quantize ``x`` to ``step * clamp(round(x / step), qmin, qmax)`` with LSQ gradients.

    ``numel`` is the number of elements the step size is shared by (per sample for activations);
    LSQ scales the step's gradient by ``1 / sqrt(numel * qmax)`` to keep its updates stable.
    """
    g = 1.0 / math.sqrt(max(numel, 1) * max(qmax, 1))
    s = _grad_scale(step, g)
    return _round_ste(torch.clamp(x / s, qmin, qmax)) * s


def quantize_codes(x: torch.Tensor, step: torch.Tensor | float, qmin: int, qmax: int) -> torch.Tensor:
    """Integer codes ``clamp(round(x / step), qmin, qmax)`` as a float tensor (inference only)."""
    return torch.clamp(torch.round(x / step), qmin, qmax)


@torch.no_grad()
def subsample(x: torch.Tensor, max_samples: int = 50_000) -> torch.Tensor:
    """A fixed, seeded sample of at most ``max_samples`` values of ``x`` (flattened, float)."""
    x = x.detach().float().flatten()
    if x.numel() <= max_samples:
        return x
    return x[torch.randint(0, x.numel(), (max_samples,), generator=torch.Generator().manual_seed(0))]


@torch.no_grad()
def mse_optimal_step(x: torch.Tensor, qmin: int, qmax: int, grid: int = 64, max_samples: int = 50_000) -> float:
    """Step size that minimises the quantization MSE of ``x``: an initial value for LSQ.

    LSQ's own initial value (2 mean|x| / sqrt(qmax)) clips far too much at 6 to 8 bits when
    warm-starting from a trained model, so the step is searched over fractions of the range.
    """
    x = subsample(x, max_samples)
    hi = max(float(x.max()), 0.0) / qmax if qmin == 0 else float(x.abs().max()) / max(qmax, 1)
    if hi <= 0:
        return 1e-3
    best, best_err = hi, float("inf")
    for frac in torch.linspace(0.05, 1.0, grid).tolist():
        s = hi * frac
        err = float(((quantize_codes(x, s, qmin, qmax) * s - x) ** 2).mean())
        if err < best_err:
            best, best_err = s, err
    return best
