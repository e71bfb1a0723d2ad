"""Hostile agents run through ``abn-gym bench``: what the boundary keeps from them, and what it refuses.

Each agent is a module written into the test's folder; its payload is harmless (it writes what it
found into a marker file there). The rows the bench must not let them change are compared with a
run without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from agents.app.cli import main

ENV = ["--env", "ABN-ResNet20Quarter-v1", "--split", "val", "--episodes", "20", "--no-progress", "--jobs", "1"]

HUNTER = '''
import gc, inspect, json, sys
import numpy as np

WANTED = {"EpisodeEngine", "ABNVectorEnv", "ABNEnv", "ResNetSupernet", "Split", "EnvView", "EnvCore"}


def _reachable(roots, limit=200_000):
    """Everything reachable from roots through attributes, containers, closures and frames."""
    seen, todo, found = set(), list(roots), []
    while todo and len(seen) < limit:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, (str, bytes, int, float, bool, type(None))):
            continue
        seen.add(id(obj))
        if type(obj).__name__ in WANTED:
            found.append(type(obj).__name__)
        if isinstance(obj, type(sys)):
            continue  # a module: sys.modules is searched on its own
        if isinstance(obj, dict):
            todo += list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            todo += list(obj)
        for name in ("__dict__", "__closure__", "__self__", "__func__", "f_locals", "f_back", "cell_contents"):
            try:
                value = getattr(obj, name, None)
            except Exception:
                continue
            if value is not None:
                todo.append(value)
        for slot in getattr(type(obj), "__slots__", ()):
            try:
                todo.append(getattr(obj, slot))
            except Exception:
                pass
    return found


def hunt(agent, obs, infos):
    found = _reachable([agent, obs, infos, inspect.currentframe()])
    found += [f"gc:{type(o).__name__}" for o in gc.get_objects() if type(o).__name__ in WANTED]
    for name, module in list(sys.modules.items()):
        for attr, value in list(vars(module).items()) if module is not None else []:
            if type(value).__name__ in WANTED:
                found.append(f"sys.modules:{name}.{attr}")
    caches = []
    try:
        caches.append(sys.modules["supernets.registry"]._load.cache_info().currsize)
    except (KeyError, AttributeError):
        pass
    try:
        caches.append(len(sys.modules["abn_gym.engine"]._REFERENCE_PREDICTIONS))
    except (KeyError, AttributeError):
        pass
    if any(caches):
        found.append(f"loaded caches {caches}")
    return found


class Hunter:
    name = "hunter"
    stochastic = False

    def __init__(self):
        self.done = False

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        if not self.done:
            self.done = True
            with open("hunter-found.json", "w") as f:
                json.dump(hunt(self, obs, infos), f)
        return np.ones(len(obs), dtype=np.int64)  # honest: fixed-3's action
'''

SABOTEUR = '''
import gc, json, sys
import numpy as np
import torch


class Saboteur:
    """Corrupts every supernet and split it can reach, then acts like fixed-3."""

    name = "saboteur"
    stochastic = False

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        hit = []
        with torch.inference_mode():
            for o in gc.get_objects():
                kind = type(o).__name__
                if kind == "ResNetSupernet":
                    for t in o.state_dict().values():
                        if t.is_floating_point():
                            t.mul_(-0.5)
                    hit.append(kind)
                elif kind == "Split":
                    o.labels.fill_(0)
                    hit.append(kind)
                elif kind == "EpisodeEngine":
                    o.labels[:] = 0
                    hit.append(kind)
        with open("saboteur-hit.json", "w") as f:
            json.dump(hit, f)
        return np.ones(len(obs), dtype=np.int64)
'''

PEEKER = '''
import numpy as np


class Peeker:
    """Calls the look-ahead without declaring uses_lookahead, and swallows the refusal."""

    name = "peeker"

    def reset(self, num_envs, seed):
        pass

    def act(self, obs, infos):
        view = infos["view"]
        try:
            view.lookahead(np.full(view.num_layers - view.layer, 8))
        except Exception:
            pass
        return np.zeros(len(obs), dtype=np.int64)
'''


@pytest.fixture
def folder(tmp_path, monkeypatch):
    for name, text in {"hunter": HUNTER, "saboteur": SABOTEUR, "peeker": PEEKER}.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _rows(out):
    doc = json.loads((out / "results.json").read_text())
    keep = ("accuracy", "bitops", "decision_macs", "reward")
    return {r["agent"]: {k: r.get(k) for k in keep} for r in [*doc["rows"], *doc["front"]]}, doc


@pytest.mark.slow
def test_hostile_agents_find_nothing_and_change_no_other_row(folder):
    # The saboteur runs first, so a corrupted bench would show in every row after it.
    agents = "saboteur:Saboteur,hunter:Hunter,greedy,fixed-4"
    assert main(["bench", *ENV, "--agents", agents, "--out", "hostile"]) == 0
    assert main(["bench", *ENV, "--agents", "greedy,fixed-4", "--out", "honest"]) == 0
    hostile, doc = _rows(folder / "hostile")
    honest, _ = _rows(folder / "honest")
    assert json.loads((folder / "hunter-found.json").read_text()) == []  # nothing of the env reachable
    assert json.loads((folder / "saboteur-hit.json").read_text()) == []  # nothing of the bench to corrupt
    for name, row in honest.items():
        assert hostile[name] == row, name
    # Both hostile agents act like fixed-3, and that is what their rows say.
    assert hostile["hunter"]["accuracy"] == hostile["fixed-3"]["accuracy"] == hostile["saboteur"]["accuracy"]
    assert doc["isolation"] == "worker" and doc["agents"]["hunter"]["ran_in"] == "worker"
    assert main(["validate", str(folder / "hostile" / "results.json"), "--no-progress"]) == 0


@pytest.mark.slow
def test_a_row_that_does_not_reproduce_is_refused_and_nothing_is_published(folder, capsys):
    out = folder / "out"
    assert main(["bench", *ENV, "--agents", "fixed-4,greedy", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    # In the bench process (trusted code only), the saboteur corrupts the cached supernet and split: a process
    # of its own, so that the corruption it leaves in that process's caches cannot reach the tests after this one.
    argv = ["bench", *ENV, "--agents", "saboteur:Saboteur,greedy,fixed-4", "--out", str(out), "--isolation", "none"]
    done = subprocess.run([sys.executable, "-m", "agents.app.cli", *argv], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 2, done.stderr[-3000:]
    err = done.stderr
    assert "do not reproduce on a fresh engine" in err and "'saboteur'" in err and "'greedy'" in err
    assert json.loads((folder / "saboteur-hit.json").read_text())  # it did reach the bench's state
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("isolation", ["worker", "none"])
def test_undeclared_lookahead_is_refused(folder, capsys, isolation):
    argv = ["bench", *ENV, "--agents", "peeker:Peeker", "--out", "out", "--isolation", isolation]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "agent 'peeker' called the look-ahead" in err and "uses_lookahead = True" in err
    assert not (folder / "out" / "results.json").exists()
