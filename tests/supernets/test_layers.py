"""Switchable layers' frozen fast paths: grouped inference and padded batch sizes."""

import numpy as np
import torch

from supernets.layers import inverse_permutation, padded_batch, take_rows


def test_padded_batch_bounds_sizes_and_waste():
    sizes = [padded_batch(n) for n in range(1, 4097)]
    assert all(n <= p <= n * 1.125 for n, p in zip(range(1, 4097), sizes))
    assert sizes == sorted(sizes)  # monotone: a bigger group never gets a smaller batch
    assert sizes[:16] == list(range(1, 17))  # small groups are not padded at all
    assert len(set(sizes[:1024])) == 64  # bounded: oneDNN caches one primitive per size


def test_inverse_permutation():
    order = np.random.default_rng(0).permutation(50)
    inv = inverse_permutation(order)
    assert np.array_equal(order[inv], np.arange(50)) and np.array_equal(inv[order], np.arange(50))


def test_grouped_rows_equal_each_row_alone_and_fill_out(net, test_split):
    conv = net.convs[3]
    with torch.inference_mode():
        x = net.stem_forward(test_split.inputs(slice(0, 40))).x
        bits = np.random.default_rng(1).choice(net.bit_choices, 40)
        out = torch.full((40, 28, 28, 16), float("nan")).permute(0, 3, 1, 2)
        y, order = conv.run_frozen_grouped(x, bits, out=out)
        assert y.data_ptr() == out.data_ptr() and not torch.isnan(out).any()
        assert np.array_equal(order, np.argsort(bits, kind="stable"))
        for k, r in enumerate(order):
            assert torch.equal(y[k], conv.run_frozen(x[r : r + 1], int(bits[r]))[0])
        in_order = conv.run_frozen_rows(x, bits)
        assert torch.equal(take_rows(in_order, torch.from_numpy(order)), y)
