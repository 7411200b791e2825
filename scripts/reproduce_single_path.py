"""Thin wrapper: ``acnn reproduce single-path``.

python scripts/reproduce_single_path.py [--quick] [--out results/single-path] [options: --help]
"""

import sys

from adaptive_cnn.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "single-path", *sys.argv[1:]]))
