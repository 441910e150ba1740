"""Models of the paper's experiments, written for ensembles of seeds trained as one batched model."""
from .vae import CategoricalVAE

__all__ = ["CategoricalVAE"]
