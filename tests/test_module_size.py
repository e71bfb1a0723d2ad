"""No module of the three packages grows past 500 lines: a file that does that holds more than one job."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 500


def test_no_module_is_longer_than_500_lines():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in ("supernets", "abn_gym", "agents")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert len(sizes) > 50  # the packages were found
    too_long = {name: n for name, n in sizes.items() if n > LIMIT}
    assert not too_long, f"split these by job (at most {LIMIT} lines each): {too_long}"
