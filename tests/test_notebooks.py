"""Every notebook runs top to bottom (what a new user does first)."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_notebooks_are_their_generated_sources_stored_with_outputs(tmp_path):
    """`make notebooks` regenerates and executes them: the stored cells are generate.py's, with outputs."""
    assert [p.name for p in NOTEBOOKS] == ["01_quickstart.ipynb", "02_train_ppo.ipynb", "03_custom_agent.ipynb"]
    subprocess.run([sys.executable, str(NOTEBOOKS[0].parent / "generate.py"), str(tmp_path)], check=True)
    for path in NOTEBOOKS:
        stored = nbformat.read(path, as_version=4)
        fresh = nbformat.read(tmp_path / path.name, as_version=4)
        assert [c.source for c in stored.cells] == [c.source for c in fresh.cells], f"{path.name}: run make notebooks"
        outputs = [o for c in stored.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert outputs, f"{path.name} is stored without outputs: run make notebooks"
        assert not [o for o in outputs if o.get("output_type") == "error"], path.name
    text = "".join(
        str(o.get("data", {}).get("text/markdown", ""))
        for path in NOTEBOOKS[1:]
        for c in nbformat.read(path, as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert "gap to static front" in text and "gap to static mixtures" in text  # the paired columns
    assert "| nan |" not in text  # every row has its wall time
    assert "ABN-ResNet20Quarter-v1" in text  # notebook 03 runs on the steep task's supernet too


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
