"""Which bit-widths the static fronts (and learned rows) choose under BitOps and under BitFusion.

    python docs/results/scripts/bit_widths.py [results/<id>/results.json ...] \
        > docs/ABN-ResNet20Quarter-BitFusion-v1/bit-widths.md

Reads the shipped static fronts of the steep supernet (agents/policies/static-<name>.json, searched
under BitOps, and static-<name>-bitfusion.json, under BitFusion) and, for each bench results.json
given, the configurations its non-static rows ran. Writes one Markdown table: the share of layer
decisions at each bit-width.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from agents.controllers.static_configs import POLICY_DIR, model_suffix

SUPERNET = "resnet20-quarter-fashionmnist"
WIDTHS = (2, 3, 4, 5, 6, 7, 8)


def row(label: str, configs: list[list[int]]) -> str:
    counts = Counter(b for bits in configs for b in bits)
    total = sum(counts.values())
    shares = " | ".join(f"{100 * counts[w] / total:.1f}" for w in WIDTHS)
    odd = sum(counts[w] for w in WIDTHS if w % 2)
    return f"| {label} | {len(configs)} | {shares} | {100 * odd / total:.1f} |"


def main(results: list[str]) -> str:
    head = "| configurations | count | " + " | ".join(f"{w} bits %" for w in WIDTHS) + " | odd widths % |"
    lines = [head, "| --- | ---: | " + "---: | " * len(WIDTHS) + "---: |"]
    for model, label in (("bitops", "BitOps"), ("bitfusion", "BitFusion")):
        data = json.loads((POLICY_DIR / f"static-{SUPERNET}{model_suffix(model)}.json").read_text())
        configs = list(data["configs"].values())
        lines.append(row(f"static front searched under {label} (static-2.25 to static-7.5)", configs))
    for path in results:
        doc = json.loads(Path(path).read_text())
        model = (doc.get("cost_model") or {"model": "bitops"})["model"]
        names = [r["agent"] for r in doc["rows"] if not r["agent"].startswith(("fixed-", "static-", "random"))]
        for name in names:
            episodes = [r["bits"] for r in doc["records"] if r["agent"] == name]
            lines.append(row(f"{name} on {doc['env']} ({model}), per episode", episodes))
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
