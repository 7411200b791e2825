"""``python -m adaptive_cnn`` is the ``acnn`` command."""

from adaptive_cnn.cli import main

main()
