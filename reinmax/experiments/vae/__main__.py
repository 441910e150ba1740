"""``python -m reinmax.experiments.vae``: see :mod:`.cli`."""
from .cli import main

main()
