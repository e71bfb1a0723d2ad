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
