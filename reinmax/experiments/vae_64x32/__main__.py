"""``python -m reinmax.experiments.vae_64x32``: see :mod:`.cli`."""
from .cli import main

main()
