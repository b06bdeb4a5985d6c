"""``python -m physnn``: the same as the ``physnn`` command."""

from physnn.cli import main

main()
