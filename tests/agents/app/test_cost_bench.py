"""The bench under a cost model (#28, section 3): BitFusion's registered id, --cost-model, and a user's table.

Every cost below is checked against a count made by hand from the layers' MACs (BitFusion) or from
the table's own rows (a user's table), never against the code that computes it.
"""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from agents.app.bench import BenchArgs, bench
from agents.app.static_search import save_result
from agents.app.validate import validate
from agents.controllers.static_configs import POLICY_DIR, static_search
from supernets.costs import layer_names, write_cost_file
from supernets.registry import load_supernet, load_supernet_split, read_supernet_card

QUARTER = "resnet20-quarter-fashionmnist"
BITFUSION_ID = "ABN-ResNet20Quarter-BitFusion-v1"
AGENTS = ["fixed-2", "fixed-4", "static-3", "greedy"]
E = 20


@pytest.fixture(scope="module")
def quarter():
    return load_supernet(QUARTER)


def bricks(net, bits):
    """BitFusion bricks of a configuration, by hand: ceil(b/2)^2 per MAC, tied layers with theirs, fixed at 8."""
    per_mac = [math.ceil(b / 2) ** 2 for b in bits]
    total = sum(per_mac[t] * s.macs for t, s in enumerate(net.layer_specs))
    total += sum(per_mac[t] * s.macs for t, s in net.extra_specs)
    return float(total + 16 * sum(s.macs for s in net.fixed_specs))


@pytest.fixture(scope="module")
def bitfusion(tmp_path_factory):
    out = tmp_path_factory.mktemp("bitfusion")
    res = bench(BenchArgs(env=BITFUSION_ID, agents=AGENTS, split="val", episodes=E, out=str(out), progress=False))
    return out, res


def test_the_bitfusion_id_benches_in_bricks(bitfusion, quarter):
    out, res = bitfusion
    doc = json.loads((out / "results.json").read_text())
    assert doc["cost_model"] == res["cost_model"] == {"model": "bitfusion", "unit": "bricks", "sha256": None}
    assert doc["env_kwargs"]["cost_model"] == "bitfusion"
    all8 = bricks(quarter, [8] * 18)
    for r in doc["records"]:
        assert r["cost"] == bricks(quarter, r["bits"]) and r["cost_fraction"] == pytest.approx(r["cost"] / all8)
        assert r["bitops"] == quarter.bitops(r["bits"])  # BitOps are still recorded beside the cost
    rows = {r["agent"]: r for r in res["rows"]}
    for name, row in rows.items():
        mine = [r["cost"] for r in doc["records"] if r["agent"] == name]
        assert row["cost"] == pytest.approx(np.mean(mine), rel=1e-12)
    assert rows["fixed-4"]["cost"] == bricks(quarter, [4] * 18) == bricks(quarter, [3] * 18)
    # The static rows are the shipped BitFusion front's configurations.
    shipped = json.loads((POLICY_DIR / f"static-{QUARTER}-bitfusion.json").read_text())
    assert doc["agents"]["static-3"]["config"] == shipped["configs"]["3"]
    # The front is judged in bricks: each row's staircase step spends no more bricks than the row.
    front = {f["agent"]: f for f in res["front"]}
    assert all("cost" in f for f in front.values())
    for row in rows.values():
        against = row["front"]["against"]
        if against is not None:
            assert front[against]["cost"] <= row["cost"] * (1 + 1e-9)
    assert validate(out / "results.json", progress=False)["ok"]


def test_the_leaderboard_names_its_cost_model(bitfusion):
    out, _ = bitfusion
    full = (out / "leaderboard.md").read_text().splitlines()
    assert full[0].startswith("Cost model: `bitfusion` (bricks)")
    assert "| cost (Mbricks) |" in full[2] and "| cost / all-8 |" in full[2] and "GBitOps" not in full[2]
    compact = (out / "leaderboard-compact.md").read_text().splitlines()
    assert compact[0].split(" | ")[2] == "cost (Mbricks)"


def test_validate_catches_a_forged_cost(bitfusion, tmp_path):
    out, _ = bitfusion
    doc = json.loads((out / "results.json").read_text())
    k = next(i for i, r in enumerate(doc["records"]) if r["agent"] == "greedy")
    doc["records"][k]["cost"] *= 0.5
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    errors = validate(forged, progress=False)["errors"]
    assert errors[0].startswith(f"record {k} (greedy, ") and "recorded cost" in errors[0]
    assert any(e.startswith("row 'greedy': mean cost") for e in errors)


@pytest.mark.slow
def test_cost_model_option_equals_the_registered_id(bitfusion, tmp_path):
    """`bench --env ABN-ResNet20Quarter-v1 --cost-model bitfusion` ranks as the registered id does.

    Only the reward differs (the ids' cost_coef); accuracy, cost, the front and the verdicts are the same.
    """
    _, res = bitfusion
    mine = bench(
        BenchArgs(
            env="ABN-ResNet20Quarter-v1",
            cost_model="bitfusion",
            agents=AGENTS,
            split="val",
            episodes=E,
            out=str(tmp_path),
            progress=False,
        )
    )
    keys = ("agent", "accuracy", "cost", "cost_fraction", "bitops")
    assert [{k: r[k] for k in keys} for r in mine["rows"]] == [{k: r[k] for k in keys} for r in res["rows"]]
    assert [r["front"]["hull_mixture"] for r in mine["rows"]] == [r["front"]["hull_mixture"] for r in res["rows"]]
    assert mine["front"] == res["front"]


@pytest.mark.slow
def test_a_users_cost_table_end_to_end(quarter, tmp_path):
    """A latency table written by hand: the env, static search and bench agree on a configuration's cost."""
    names = layer_names(quarter)
    rng = np.random.default_rng(0)
    # Made-up latencies in ms: rising with bits, but not in proportion to BitOps (3 bits cost what 4 do, say).
    costs = {
        name: {b: round(float(base * (1 + math.ceil(b / 2))), 6) for b in range(2, 9)}
        for name, base in zip(
            names["switchable"] + names["tied"] + names["fixed"],
            rng.uniform(0.01, 0.1, size=sum(map(len, names.values()))),
        )
    }
    path = tmp_path / "latency.csv"
    write_cost_file(path, costs, "ms")
    tied = {t: [s.name for j, s in quarter.extra_specs if j == t] for t in range(18)}

    def by_hand(bits):
        total = sum(
            costs[quarter.layer_specs[t].name][b] + sum(costs[n][b] for n in tied[t]) for t, b in enumerate(bits)
        )
        return total + sum(costs[s.name][8] for s in quarter.fixed_specs)

    # Static search under the table: a few targets, a handful of images.
    sha = read_supernet_card(QUARTER)["sha256"]
    val = load_supernet_split(QUARTER, "val")
    # 32 images: on fewer, every configuration ties with all-2 and none is undominated.
    result = static_search(quarter, val, targets=(2.5, 3, 4, 5, 6, 7), limit=32, progress=False, cost_model=str(path))
    assert result["cost_model"]["model"] == "table:latency.csv" and result["cost_model"]["unit"] == "ms"
    target = next(iter(result["configs"]))  # the first target with a row (which ones have one varies)
    config = result["configs"][target]
    assert result["cost"][target] == pytest.approx(by_hand(config), rel=1e-12)
    static_dir = tmp_path / "static"
    assert save_result(result, static_dir, QUARTER, sha, "test").name == f"static-{QUARTER}-table-latency.json"

    # The env, made with the table, charges the same for that configuration.
    env = gym.make("ABN-ResNet20Quarter-v1", cost_model=str(path), split="val")
    env.reset(seed=0)
    step_costs = []
    for b in config:
        _, _, done, _, info = env.step(env.unwrapped.bit_choices.index(b))
        step_costs.append(info["cost_step"])
    assert done and info["cost"] == pytest.approx(by_hand(config), rel=1e-12)
    assert env.unwrapped.cost_unit == "ms"
    assert info["cost"] == pytest.approx(sum(step_costs) + info["cost_fixed"], rel=1e-12)

    # The bench under the table ranks in ms, with the static rows of that search.
    out = tmp_path / "bench"
    args = BenchArgs(
        env="ABN-ResNet20Quarter-v1",
        cost_model=str(path),
        agents=["fixed-4", f"static-{target}"],
        split="val",
        episodes=6,
        out=str(out),
        static_from=str(static_dir),
        progress=False,
    )
    res = bench(args)
    doc = json.loads((out / "results.json").read_text())
    assert doc["cost_model"] == result["cost_model"]
    rows = {r["agent"]: r for r in res["rows"]}
    assert rows[f"static-{target}"]["cost"] == pytest.approx(by_hand(config), rel=1e-12)
    assert rows["fixed-4"]["cost"] == pytest.approx(by_hand([4] * 18), rel=1e-12)
    assert "| cost (ms) |" in (out / "leaderboard.md").read_text().splitlines()[2]
    assert validate(out / "results.json", progress=False)["ok"]


def test_the_bitops_column_of_a_small_network_is_in_mbitops():
    from agents.app.costs import CostColumns

    small, shipped = CostColumns({"model": "bitops"}, 5.0e6), CostColumns({"model": "bitops"}, 0.1246e9)
    assert (small.header, small.cell({"bitops": 3.1e5})) == ("MBitOps", "0.3100")
    assert (shipped.header, shipped.cell({"bitops": 9.5e6})) == ("GBitOps", "0.0095")
    assert CostColumns({"model": "bitops"}, 0.0).header == "GBitOps"  # all-8 unknown: as the tables always were
