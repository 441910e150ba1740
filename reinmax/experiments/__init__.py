"""Experiments of the paper: each module has a validated config, run(config) -> results, no plotting."""
