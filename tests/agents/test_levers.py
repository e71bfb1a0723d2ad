"""`abn-gym levers`: every lever trains, runs on val beside the static front, and lands in the table."""

import json

import pytest

from agents.levers import LEVERS, LeverArgs, run_levers


@pytest.mark.slow
def test_levers_train_bench_on_val_and_resume(tmp_path):
    args = LeverArgs(
        env="ABN-ResNet-v0",
        out=str(tmp_path),
        levers=["ppo-baseline", "escalation-k3-h4"],
        ppo_steps=128 * 36,
        escalation_images=300,
        episodes=60,
        progress=False,
    )
    result = run_levers(args)
    names = [r["agent"] for r in result["rows"]]
    assert {"ppo-baseline", "escalation-k3-h4", "fixed-2", "static-3"} <= set(names)
    doc = json.loads((tmp_path / "ABN-ResNet-v0" / "levers.json").read_text())
    assert doc["rows"] == result["rows"]
    bench = json.loads((tmp_path / "ABN-ResNet-v0" / "bench" / "results.json").read_text())
    assert bench["split"] == "val"  # levers are chosen on val, never on test
    table = (tmp_path / "ABN-ResNet-v0" / "levers.md").read_text()
    for name in ("ppo-baseline", "escalation-k3-h4"):
        row = next(r for r in result["rows"] if r["agent"] == name)
        assert f"| {name} |" in table and f"{100 * row['accuracy']:.2f}" in table
    # A second run trains nothing: the cards are there.
    card = tmp_path / "ABN-ResNet-v0" / "runs" / "ppo-baseline" / "card.json"
    stamp = card.stat().st_mtime_ns
    run_levers(args)
    assert card.stat().st_mtime_ns == stamp


def test_unknown_lever_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown lever"):
        run_levers(LeverArgs(out=str(tmp_path), levers=["nope"]))
    assert len({lv.name for lv in LEVERS}) == len(LEVERS)
