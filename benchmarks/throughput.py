"""Throughput benchmark (same as `abn-gym perf`): python benchmarks/throughput.py [--json] [--quick]."""

import argparse
import sys

from agents.perf import PerfArgs, main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer sizes and repetitions")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--include-bench", action="store_true", help="also time `abn-gym bench` with defaults")
    p.add_argument("--out", default=None, help="also write perf.json and perf.md into this directory")
    ns = p.parse_args()
    args = PerfArgs(json=ns.json, quick=ns.quick, device=ns.device, include_bench=ns.include_bench, out=ns.out)
    sys.exit(main(args))
