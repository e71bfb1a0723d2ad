"""The integer kernels leave whole env episodes bit-identical (the episode benchmark's own check)."""

from agents.app.perf.int_kernel_episode import EpisodeArgs, measure, report, verify_split


def test_episodes_with_and_without_integer_kernels_are_identical():
    args = EpisodeArgs(env="ABN-ResNet20Quarter-v1", num_envs=16, runs=1)
    result = measure(args)
    assert result["identical"] is True
    assert "bit-identical with the kernels on and off: True" in report(args, result)


def test_a_test_split_subset_is_identical_step_by_step_and_in_its_logits():
    # force: every conv an integer kernel applies to runs one, whatever the batch (auto keeps small groups fp32)
    result = verify_split("ABN-ResNet20Quarter-v1", num_envs=16, limit=32, mode="force")
    assert result["images"] == 32 and result["steps"] == 2 * 18
    assert result["identical_steps"] is True and result["identical_logits"] is True
