import pytest
import torch

from supernets import resnet20
from supernets.convert import from_torchvision_resnet18


def test_stepwise_equals_forward_exactly(net, test_split):
    x = test_split.inputs(slice(0, 64))
    bits = [2, 3, 4, 5, 6, 7, 8, 2, 8, 3, 7, 4, 6, 5, 5, 6, 4, 7]
    with torch.inference_mode():
        state = net.stem_forward(x)
        for i, b in enumerate(bits):
            state = net.step(state, i, b)
        stepwise = net.head(state)
    assert torch.equal(stepwise, net(x, bits))


def test_frozen_path_matches_fake_quant_path(test_split):
    from supernets import load_supernet

    frozen = load_supernet("resnet20-fashionmnist")
    fake = resnet20()
    fake.load_state_dict(frozen.state_dict())
    fake.eval()
    x = test_split.inputs(slice(0, 256))
    for b in (2, 4, 8):
        with torch.no_grad():
            ref = fake(x, [b] * 18)
        out = frozen(x, [b] * 18)
        # Same function up to float rounding: a value on a rounding boundary may take the
        # neighbouring integer code, so compare predictions and typical differences.
        assert (out.argmax(1) == ref.argmax(1)).float().mean() >= 0.98
        assert (out - ref).abs().median() < 1e-3


def test_batch_composition_does_not_change_results(net, test_split):
    x = test_split.inputs(slice(0, 16))
    full = net(x, [3] * 18)
    singles = torch.cat([net(x[i : i + 1], [3] * 18) for i in range(16)])
    assert torch.equal(full, singles)


def test_weight_cache_is_used(net):
    conv = net.convs[0]
    assert conv.frozen and set(conv._frozen) == set(net.bit_choices)
    codes = conv._frozen[2].weight_codes
    assert set(codes.unique().tolist()) <= {-2.0, -1.0, 0.0, 1.0}


@pytest.mark.parametrize(
    "bits,needle",
    [
        ([4] * 17, "expected 18 values"),
        ([4] * 17 + [9], "[9] were not trained"),
        ([1] + [4] * 17, "[1] were not trained"),
    ],
)
def test_bad_bits_are_refused(net, bits, needle):
    with pytest.raises(ValueError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        net(torch.zeros(1, 1, 28, 28), bits)


def test_resnet18_supernet_random_weights_small_input():
    torch.manual_seed(0)
    net = from_torchvision_resnet18(calibration=torch.randn(2, 3, 64, 64))
    assert net.num_switchable == 16 and len(net.downsample) == 3
    net.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = net(x, [4] * 16)
    net.freeze()
    out = net(x, [4] * 16)
    assert out.shape == (2, 1000)
    # Same function up to float rounding; a value on a rounding boundary (the classifier's input
    # quantizer included) may take the neighbouring code, so compare typical differences.
    assert (out - ref).abs().median() < 1e-3
    assert not torch.equal(net(x, [2] * 16), out)
    # Mixed bit-widths per row, ResNet-18 layout (1x1 downsample shortcuts, stem pooling):
    # each row equals the row run alone.
    grouped, alone = _grouped_and_alone(net, x, torch.tensor([[2, 8]] * 16).numpy())
    assert torch.equal(grouped, alone)


def _grouped_and_alone(net, x, per_row):
    """Logits of batch x stepped with per-row bit-widths (L, N), and of each row run alone."""
    with torch.inference_mode():
        state = net.stem_forward(x)
        for i, bits in enumerate(per_row):
            state = net.step(state, i, bits)
        grouped = net.head(state)
    alone = torch.cat([net(x[r : r + 1], per_row[:, r].tolist()) for r in range(len(x))])
    return grouped, alone


def test_grouped_step_equals_rows_run_alone(net, test_split):
    import numpy as np

    x = test_split.inputs(slice(0, 12))
    grouped, alone = _grouped_and_alone(net, x, np.random.default_rng(0).choice(net.bit_choices, (18, 12)))
    assert torch.equal(grouped, alone)


def test_grouped_state_selects_rows_in_batch_order(net, test_split):
    import numpy as np

    x = test_split.inputs(slice(0, 10))
    per_row = np.random.default_rng(2).choice(net.bit_choices, (18, 10))
    full, _ = _grouped_and_alone(net, x, per_row)
    with torch.inference_mode():
        state = net.stem_forward(x)
        for i in range(3):  # stop inside a block: x and its shortcut are grouped differently
            state = net.step(state, i, per_row[i])
        assert state.rows is not None and state.shortcut_rows is not None
        by_slice, by_index = state.select(slice(2, 5)), state.select(np.arange(2, 5))
        assert torch.equal(by_slice.x, by_index.x) and torch.equal(by_slice.shortcut, by_index.shortcut)
        rows = np.array([7, 2, 9, 2])
        sub = state.select(rows)
        assert sub.rows is None and sub.shortcut_rows is None
        for i in range(3, 18):
            sub = net.step(sub, i, per_row[i, rows])
        assert torch.equal(net.head(sub), full[rows])


def test_state_in_order_with_a_grouped_shortcut(net, test_split):
    # A hand-built state whose shortcut alone is permuted: the residual still lands per row.
    import numpy as np

    from supernets.resnet import State

    x = test_split.inputs(slice(0, 6))
    with torch.inference_mode():
        state = net.step(net.stem_forward(x), 0, 5)
        perm = np.array([3, 1, 5, 0, 2, 4])
        permuted = State(state.x, state.shortcut[torch.from_numpy(perm)], None, perm)
        assert torch.equal(net.step(permuted, 1, 5).x, net.step(state, 1, 5).x)


def test_an_input_the_strides_shrink_to_1x1_is_refused_with_its_sizes():
    from supernets.foundation.errors import UsageError
    from supernets.resnet import ResNetConfig

    digits = dict(input_size=8, stem_channels=4, stage_channels=(4, 8, 8, 8), blocks_per_stage=(1, 1, 1, 1))
    with pytest.raises(UsageError, match=r"input_size=8: .* \(8x8 -> 8x8 -> 8x8 -> 4x4 -> 2x2 -> 1x1\)"):
        ResNetConfig(stage_strides=(1, 2, 2, 2), **digits).validate()
    assert ResNetConfig(stage_strides=(1, 1, 2, 2), **digits).validate()  # ends at 2x2
    with pytest.raises(UsageError, match=r"stem_stride"):
        ResNetConfig(input_size=8, stem_stride=2, stem_pool=True).validate()  # 8 -> 4 -> 2 -> 2 -> 1 -> 1
