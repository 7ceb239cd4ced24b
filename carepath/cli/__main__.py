"""``python -m carepath.cli``: the same as the ``carepath`` command."""

from carepath.launch import main

main()
