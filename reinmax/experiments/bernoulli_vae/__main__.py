"""``python -m reinmax.experiments.bernoulli_vae``: see :mod:`.cli`."""
from .cli import main

main()
