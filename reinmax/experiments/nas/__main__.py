"""``python -m reinmax.experiments.nas``: see :mod:`.cli`."""
from .cli import main

main()
