"""``python -m scactive``: the command line."""

from .cli import main

main()
