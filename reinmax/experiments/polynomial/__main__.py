"""``python -m reinmax.experiments.polynomial``: see :mod:`.cli`."""
from .cli import main

main()
