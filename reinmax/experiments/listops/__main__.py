"""``python -m reinmax.experiments.listops``: see :mod:`.cli`."""
from .cli import main

main()
