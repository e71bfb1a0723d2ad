"""The shared file helpers: publishing is refused outside a source checkout, from any floor's module."""

import hashlib
from pathlib import Path

import pytest

import agents.app.static_search
import supernets.report
from supernets.foundation.errors import UsageError
from supernets.foundation.files import atomic_write_json, check_source_checkout, sha256


@pytest.mark.parametrize("module", [supernets.report.__file__, agents.app.static_search.__file__, None])
def test_a_source_checkout_may_publish_from_any_depth(module):
    check_source_checkout(Path("target"), module)  # this checkout has pyproject.toml beside the packages


@pytest.mark.parametrize(
    "module",
    [
        "/usr/lib/python3/site-packages/supernets/foundation/files.py",
        "/usr/lib/python3/site-packages/supernets/report.py",
        "/usr/lib/python3/site-packages/agents/app/static_search.py",
    ],
)
def test_an_installed_package_refuses_to_be_published_into(module):
    with pytest.raises(UsageError, match="not a source checkout"):
        check_source_checkout(Path("target"), module)


def test_atomic_json_is_read_back_and_its_sha256_is_hashlibs(tmp_path):
    path = tmp_path / "deep" / "x.json"
    atomic_write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temporary file left behind
