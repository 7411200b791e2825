"""Thin wrapper: ``acnn reproduce hyperpower``.

python scripts/reproduce_hyperpower.py [--quick] [--out results/hyperpower] [options: --help]
"""

import sys

from adaptive_cnn.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "hyperpower", *sys.argv[1:]]))
