"""Experiments of the paper: each module has a validated config, run(config) -> results, no plotting."""


def progress_bar(*args, **kwargs):
    """tqdm.auto's bar, without its warning when a notebook has no ipywidgets (a text bar then)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm
    return tqdm(*args, **kwargs)
