"""Reproduce NeuralPower's accuracy figures: ``acnn reproduce neuralpower`` (same options).

python scripts/reproduce_neuralpower.py [--quick] [--out results/neuralpower] [...]
"""

import sys

from adaptive_cnn.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["reproduce", "neuralpower", *sys.argv[1:]]))
