"""Experiments of the paper: each package has a validated config and ``run(config) -> record``,
no plotting; what they share (config checks, device, seeds, atomic records and checkpoints,
resume by fingerprint, the record shape) is ``reinmax.experiments.layer``."""


def progress_bar(*args, **kwargs):
    """tqdm.auto's bar, without its warning when a notebook has no ipywidgets (a text bar then)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(*args, **kwargs)
