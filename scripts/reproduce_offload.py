"""Device energy vs link for all-local/all-cloud/cascade: ``acnn reproduce offload``.

python scripts/reproduce_offload.py [--quick] [--run-dir runs/design] [--out results/offload]
"""

import sys

from adaptive_cnn.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "offload", *sys.argv[1:]]))
