"""``python -m simulator --port N``: serve the simulated exchange until Ctrl-C."""

from __future__ import annotations

import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
