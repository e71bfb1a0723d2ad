"""The benchmark's pictures: families told apart, a legend that covers no point, a chart per kind of agent."""

import numpy as np
import pandas as pd
import pytest

from agents.app.plots import _describe, bits_figure, configuration_shares, family, heatmap_plot, pareto_figure


def _row(agent, bitops, accuracy, uses_label=False):
    return {
        "agent": agent,
        "bitops": bitops,
        "accuracy": accuracy,
        "accuracy_ci": [accuracy - 0.004, accuracy + 0.004],
        "uses_label": uses_label,
    }


TABLE = pd.DataFrame(
    [
        _row("random", 0.9e9, 0.933),
        *[_row(f"fixed-{b}", b * 0.25e9, 0.925 + 0.002 * b) for b in range(2, 9)],
        _row("static-3", 0.28e9, 0.930),
        _row("static-4", 0.49e9, 0.934),
        _row("greedy", 0.14e9, 0.937),
        _row("oracle", 0.13e9, 0.962, uses_label=True),
        _row("escalation", 0.33e9, 0.933),
        _row("runs/ppo/model.zip", 0.28e9, 0.927),
    ]
)


@pytest.mark.parametrize(
    ("agent", "uses_label", "expected"),
    [
        ("fixed-4", False, "fixed"),
        ("static-3 [val]", False, "static"),
        ("greedy@0.9", False, "look-ahead"),
        ("oracle", True, "oracle"),
        ("my-oracle", True, "oracle"),
        ("random", False, "random"),
        ("escalation@0.05", False, "learned"),
        ("runs/ppo/model.zip", False, "learned"),
    ],
)
def test_every_row_falls_in_one_family(agent, uses_label, expected):
    assert family(agent, uses_label) == expected


def test_the_legend_stands_outside_the_axes_and_covers_no_point():
    fig = pareto_figure(TABLE, "test")
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 > ax.get_window_extent().x1
    points = ax.transData.transform(np.c_[TABLE["bitops"] / 1e9, 100 * TABLE["accuracy"]])
    assert not any(legend.contains(x, y) for x, y in points)
    renderer = fig.canvas.get_renderer()
    for name in ("escalation", "runs/ppo/model.zip"):  # the learned rows' names cover no point either
        box = next(t for t in ax.texts if t.get_text() == name).get_window_extent(renderer)
        assert not any(box.contains(x, y) for x, y in points), name


def test_families_have_their_own_colours_and_learned_rows_are_labelled():
    fig = pareto_figure(TABLE, "test")
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    colour = {}
    for handle, label in zip(handles, labels):
        line = handle[0] if isinstance(handle, tuple) else handle  # errorbar containers hold their line first
        colour[label] = line.get_color()
    fams = {
        "fixed": colour["fixed-b (b bits everywhere)"],
        "static": colour["static-b (one config, val search)"],
        "random": colour["random"],
        "look-ahead": colour["greedy (look-ahead)"],
        "oracle": colour["oracle (uses labels)"],
        "learned": colour["escalation"],
    }
    assert len(set(fams.values())) == len(fams)
    assert colour["runs/ppo/model.zip"] == colour["escalation"]  # one family, one colour
    texts = {t.get_text() for t in ax.texts}
    assert {"escalation", "runs/ppo/model.zip"} <= texts  # learned rows are named beside their points
    assert "greedy" not in texts


def _records(agent, configs_by_label):
    records, index = [], 0
    for configs in configs_by_label.values():
        for bits in configs:
            records.append({"agent": agent, "index": index, "bits": list(bits)})
            index += 1
    labels = np.array([label for label, configs in configs_by_label.items() for _ in configs])
    return records, labels


def test_configuration_shares_count_each_class_by_hand():
    low, high = (2,) * 18, (4,) * 18
    records, labels = _records("esc", {0: [low, low, low, high], 3: [high, high], 7: [low]})
    configs, shares = configuration_shares(records, "esc", labels)
    assert configs == [low, high]  # fewest BitOps first
    assert shares[0].tolist() == [0.75, 0.25]
    assert shares[3].tolist() == [0.0, 1.0]
    assert shares[7].tolist() == [1.0, 0.0]
    assert shares[1].tolist() == [0.0, 0.0]  # a class without images


def test_configurations_are_described_in_runs():
    assert _describe((4,) * 18) == "all 4 bits"
    assert _describe((2, 2, 2) + (4,) * 15) == "2 bits x3, then 4 bits x15"


def test_a_once_per_image_agent_gets_bars_and_a_per_layer_agent_a_heatmap(tmp_path):
    low, high = (2,) * 18, (4,) * 18
    records, labels = _records("esc", {c: [low, high, high] for c in range(10)})
    ax = bits_figure(records, "esc", labels).axes[0]
    assert len(ax.patches) == 2 * 10 and not ax.images  # bars: 2 configurations x 10 classes
    assert [p.get_width() for p in ax.patches[:10]] == pytest.approx([100 / 3] * 10)  # a third at all-2
    rng = np.random.default_rng(0)
    varied = [tuple(int(b) for b in rng.integers(2, 9, 18)) for _ in range(30)]
    records, labels = _records("ppo", {c: varied[3 * c : 3 * c + 3] for c in range(10)})
    assert bits_figure(records, "ppo", labels).axes[0].images  # a heatmap
    assert heatmap_plot(records, "ppo", labels, tmp_path / "ppo.png").stat().st_size > 0


def test_close_learned_points_keep_their_names_apart():
    # The steep task's test leaderboard: ppo and escalation sit 1.6 MBitOps apart with intervals of
    # +-0.6 points; each name must lie nearer its own point than the other's, or a reader swaps them.
    def row(agent, gbitops, accuracy, half=0.003, uses_label=False):
        return {**_row(agent, gbitops * 1e9, accuracy, uses_label), "accuracy_ci": [accuracy - half, accuracy + half]}

    fixed = [(2, 0.0095, 0.866), (3, 0.0191, 0.8755), (4, 0.0325, 0.898), (5, 0.0498, 0.9042), (8, 0.1246, 0.9061)]
    close = pd.DataFrame(
        [
            *[row(f"fixed-{b}", g, a, 0) for b, g, a in fixed],
            row("static-3", 0.0186, 0.88, 0),
            row("static-4", 0.0323, 0.8983, 0),
            row("greedy", 0.0107, 0.9061, 0.0055),
            row("oracle", 0.0099, 0.9563, 0.004, uses_label=True),
            row("ppo", 0.0249, 0.8915, 0.006),
            row("escalation", 0.0265, 0.8955, 0.0058),
        ]
    )
    fig = pareto_figure(close, "close")
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    spots = {
        name: ax.transData.transform(xy) for name, xy in (("ppo", (0.0249, 89.15)), ("escalation", (0.0265, 89.55)))
    }
    for name, own in spots.items():
        box = next(t for t in ax.texts if t.get_text() == name).get_window_extent(renderer)
        centre = np.array([(box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2])
        other = spots["escalation" if name == "ppo" else "ppo"]
        assert np.hypot(*(centre - own)) < np.hypot(*(centre - other)), name
