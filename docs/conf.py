"""Sphinx configuration of the abn-gym documentation site (``make docs``)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document this checkout, not whichever abn-gym is installed

project = "abn-gym"
author = "the abn-gym contributors"
copyright = "the abn-gym contributors, MIT licence"
release = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The generated results (``make figures``, ``make levers``, ``make zoo-figures``, ``make perf``,
# ``abn-gym supernet sweep``) stay where the commands write them; the results pages include them.
exclude_patterns = [
    "_build",
    "ABN-*/*.md",
    "levers/*.md",
    "zoo/*.md",
    "zoo/*/*.md",
    "capacity-sweep.md",
    "perf.md",
    "results/bench-wall-time.md",
]

html_theme = "furo"
html_title = f"abn-gym {release}"
html_static_path = ["_static"]
html_css_files = ["leaderboards.css"]  # the leaderboard tables: one line per row

autosummary_generate = True
templates_path = ["_templates"]
autodoc_default_options = {"show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
# Type hints name third-party classes (torch.Tensor, gymnasium.Env ...) that this site does not
# document, and there is no network for intersphinx: unresolved hint targets are not errors.
nitpicky = False
suppress_warnings = ["ref.python"]
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# ABNEnv's docstring is Gymnasium-style Markdown (## headings, pipe tables) so that it reads well
# in help() and on a code host; turn those two constructs into reStructuredText for autodoc.
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _markdown_to_rst(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        heading = re.match(r"^\s*#{2,4}\s+(.+)$", line)
        if heading:
            out += [f".. rubric:: {heading.group(1)}", ""]
            i += 1
            continue
        if _TABLE_ROW.match(line) and i + 1 < len(lines) and re.match(r"^\s*\|[\s\-:|]+\|\s*$", lines[i + 1]):
            rows = [_cells(line)]
            i += 2
            while i < len(lines) and _TABLE_ROW.match(lines[i]):
                rows.append(_cells(lines[i]))
                i += 1
            out += [".. list-table::", "   :header-rows: 1", ""]
            for row in rows:
                out += [f"   * - {row[0] or ' '}"] + [f"     - {c or ' '}" for c in row[1:]]
            out.append("")
            continue
        out.append(line)
        i += 1
    return out


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = _markdown_to_rst(lines)


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring)
