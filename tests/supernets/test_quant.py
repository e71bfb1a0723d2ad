import torch

from supernets.quant import lsq_fake_quant, mse_optimal_step, quantize_codes, signed_range, unsigned_range


def test_ranges():
    assert signed_range(2) == (-2, 1)
    assert signed_range(8) == (-128, 127)
    assert unsigned_range(2) == (0, 3)
    assert unsigned_range(8) == (0, 255)


def test_fake_quant_lands_on_grid_and_clips():
    x = torch.linspace(-3, 3, 101)
    step = torch.tensor(0.5)
    q = lsq_fake_quant(x, step, -2, 1, numel=x.numel())
    codes = q / 0.5
    assert torch.equal(codes, codes.round())
    assert codes.min() == -2 and codes.max() == 1
    assert torch.equal(quantize_codes(x, 0.5, -2, 1), codes)


def test_straight_through_and_step_gradients():
    x = torch.tensor([0.1, 0.6, 5.0], requires_grad=True)
    step = torch.tensor(0.5, requires_grad=True)
    lsq_fake_quant(x, step, 0, 3, numel=3).sum().backward()
    # Inside the range the gradient passes straight through; the clipped value gets none.
    assert x.grad.tolist() == [1.0, 1.0, 0.0]
    assert step.grad is not None and step.grad.abs() > 0


def test_mse_step_beats_naive_max_scaling_at_low_bits():
    w = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    qmin, qmax = signed_range(3)
    best = mse_optimal_step(w, qmin, qmax)
    naive = float(w.abs().max()) / qmax

    def err(s):
        return float(((quantize_codes(w, s, qmin, qmax) * s - w) ** 2).mean())

    assert err(best) < err(naive)
