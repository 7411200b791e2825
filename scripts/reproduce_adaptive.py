"""Thin wrapper: ``acnn reproduce adaptive``.

python scripts/reproduce_adaptive.py [--quick] [--out results/adaptive] [options: --help]
"""

import sys

from adaptive_cnn.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "adaptive", *sys.argv[1:]]))
