"""The integer kernels leave whole env episodes bit-identical (the episode benchmark's own check)."""

from agents.app.perf.int_kernel_episode import EpisodeArgs, measure, report


def test_episodes_with_and_without_integer_kernels_are_identical():
    args = EpisodeArgs(env="ABN-ResNet20Quarter-v1", num_envs=16, runs=1)
    result = measure(args)
    assert result["identical"] is True
    assert "bit-identical with the kernels on and off: True" in report(args, result)
