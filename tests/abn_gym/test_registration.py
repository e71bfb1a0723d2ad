"""Looking up registered ids: both id forms, and clear errors for other ids."""

import pytest

from abn_gym.registration import env_kwargs
from supernets.foundation.errors import UnknownNameError


def test_both_id_forms_give_the_registered_kwargs():
    assert env_kwargs("abn_gym:ABN-ResNet-Budget-v0") == env_kwargs("ABN-ResNet-Budget-v0")
    assert env_kwargs("ABN-ResNet-v0", cost_coef=0.1) == {**env_kwargs("ABN-ResNet-v0"), "cost_coef": 0.1}


@pytest.mark.parametrize("env_id,needle", [("CartPole-v9", "unknown env id"), ("CartPole-v1", "not an abn-gym")])
def test_other_ids_are_refused_with_the_known_ones(env_id, needle):
    with pytest.raises(UnknownNameError, match=needle) as exc:
        env_kwargs(env_id)
    assert "ABN-ResNet-v0" in str(exc.value)


@pytest.mark.parametrize("old,new", [("ABN-ResNet20Quarter-v0", "v1"), ("ABN-ResNet20Quarter-Budget-v0", "v1")])
def test_retired_versions_point_to_the_current_one(old, new):
    # v0 ran the first quarter-width supernet (commit 039a263); its results are not comparable with v1's.
    import gymnasium

    with pytest.raises(gymnasium.error.DeprecatedEnv, match=f"{old[:-3]}-{new}"):
        gymnasium.make(old)
    with pytest.raises(UnknownNameError, match=f"deprecated.*{old[:-3]}-{new}"):
        env_kwargs(old)


def test_the_default_env_id_is_written_once():
    import ast
    from pathlib import Path

    import abn_gym
    from abn_gym.registration import DEFAULT_ENV_ID

    assert DEFAULT_ENV_ID in abn_gym.ENV_IDS and abn_gym.ENV_IDS[DEFAULT_ENV_ID] == {}
    root = Path(abn_gym.__file__).resolve().parents[1]
    found = []
    for path in sorted(p for pkg in ("supernets", "abn_gym", "agents") for p in (root / pkg).rglob("*.py")):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        found += [
            f"{path.relative_to(root)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value == DEFAULT_ENV_ID and id(node) not in docstrings
        ]
    assert [f.rsplit(":", 1)[0] for f in found] == ["abn_gym/registration.py"], found
