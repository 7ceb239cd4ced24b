"""``python -m carepath.cli``: the same as the ``carepath`` command."""

from carepath.cli import main

main()
