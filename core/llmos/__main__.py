"""``python -m llmos``: the same as the ``llmos`` command."""

from llmos.cli import main

main()
