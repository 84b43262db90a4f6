"""``python -m api.cli``: the same as the ``cvault`` script."""

from api.cli import main

main()
