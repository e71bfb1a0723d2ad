"""Throughput benchmark, the same as `abn-gym perf`: python -m agents.app.perf [--json] [--quick] [...]."""

import sys

from agents.app.cli import main

if __name__ == "__main__":
    sys.exit(main(["perf", *sys.argv[1:]]))
