"""bosun-agent command line (placeholder until the agent lands)."""

from __future__ import annotations

import sys


def main() -> None:
    print("bosun-agent: not built yet", file=sys.stderr)
    sys.exit(2)
