"""The paper's grids by name (``python -m reinmax.sweep list`` shows them)."""
from pathlib import Path
from typing import Callable, Dict, Union

from reinmax import paper
from .grid import Grid

PAPER_SEEDS = list(range(10))


def polynomial_table7() -> Grid:
    """Table 7's temperatures for every Figure 1 method and p at the paper's scale: the committed
    temperature sweep (``results/polynomial/temperature_sweep_records``)."""
    from reinmax.experiments.polynomial import FIGURE1_METHODS, TABLE7_TEMPERATURES
    return Grid("polynomial", {"p": [1.5, 2.0, 3.0], "method": list(FIGURE1_METHODS),
                               "tau": list(TABLE7_TEMPERATURES)},
                {"setting": "A", "L": 128, "batch_size": 256, "steps": 200, "epochs": 40,
                 "seeds": PAPER_SEEDS})


FIGURE8_10_PANELS = [[32, 16], [32, 128], [256, 16], [256, 128]]
"""(batch size, L) of the Figures 8-10 panels run here. The paper's text says only "different
batch sizes and random variable counts"; these bracket Figure 1's (256, 128)."""


def figure8_10(sweep_file: Union[str, Path, None] = None, methods=None, panels=None,
               rodeo_grid_file: Union[str, Path, None] = None) -> Grid:
    """Figures 8-10 (p = 1.5, 2, 3) at the paper's scale (40 epochs x 200 steps, 10 seeds,
    setting A) for each (batch size, L) panel: each straight-through method at the temperature
    the committed sweep chose for its p, and the score family (no temperature). RODEO runs with
    Figure 7's settings (its committed grid's choice: samples per group, control learning rate,
    and the 16-unit control network), so that the (256, 128) panel is Figure 7's setting A at the
    paper's scale, cell for cell; the baselines' 100 units cost about 13 times as much per step
    there (1.3 hours a cell on this CPU)."""
    from reinmax.experiments import records as results
    from reinmax.experiments.polynomial import FIGURE1_METHODS, chosen_temperatures
    from reinmax.experiments.polynomial.figure7 import rodeo_options
    from reinmax.experiments.polynomial.problem import methods as trainable, temperature_free
    folder = results.RESULTS_DIR / "polynomial"
    sweep_file = sweep_file or folder / "temperature_sweep.json"
    rodeo_grid_file = Path(rodeo_grid_file or folder / "figure7_rodeo_grid.json")
    chosen_rodeo = results.read_json(rodeo_grid_file)["chosen"] if rodeo_grid_file.exists() else None
    rodeo = rodeo_options(chosen_rodeo["num_samples"], chosen_rodeo["control_lr"]) if chosen_rodeo \
        else rodeo_options(2, 1e-3)
    score = [m for m in trainable() if temperature_free(m)]
    chosen = []
    for p in (1.5, 2.0, 3.0):
        taus = chosen_temperatures(sweep_file, p)
        for method in (methods or list(FIGURE1_METHODS) + score):
            chosen.append([p, method, 1.0 if temperature_free(method) else taus[method],
                           {"RODEO": rodeo} if method == "RODEO" else {}])
    return Grid("polynomial", {"batch_size+L": panels or FIGURE8_10_PANELS,
                               "p+method+tau+method_options": chosen},
                {"setting": "A", "steps": 200, "epochs": 40, "seeds": PAPER_SEEDS})


def vae_table7() -> Grid:
    """Table 7's whole search space for the MNIST VAE at the paper's scale (all six settings,
    the five methods of Table 2, 160 epochs, seeds 0-9): what Tables 8-11 were selected from."""
    from reinmax.experiments.vae.config import CONFIGURATIONS, METHODS
    space = paper.table7_search_space()
    return Grid("vae", {"config": list(CONFIGURATIONS), "method": list(METHODS),
                        "optimizer": list(space["optimizer"]),
                        "lr": list(space["learning_rate"]), "tau": list(space["temperature"])},
                {"epochs": 160, "seeds": PAPER_SEEDS})


def vae_figure2() -> Grid:
    """Figure 2: the four 2^48 settings, five methods, nine temperatures, Table 8 otherwise."""
    from reinmax.experiments.vae.config import FIGURE2_CONFIGS, METHODS, TEMPERATURES
    return Grid("vae", {"config": list(FIGURE2_CONFIGS), "method": list(METHODS),
                        "tau": list(TEMPERATURES)}, {"epochs": 160, "seeds": PAPER_SEEDS})


def vae_book() -> Grid:
    """The book's small grid (the sweeps appendix): 8x4, the five methods of Table 2, three
    temperatures and two learning rates of Table 7, Adam, one epoch on the first 5,000 images
    (50 updates), two seeds, test -ELBO on 1,000 images. Far too short to settle what the paper's
    160 epochs select: it shows the mechanism and its cost."""
    from reinmax.experiments.vae.config import METHODS
    return Grid("vae", {"method": list(METHODS), "lr": [5e-4, 1e-3], "tau": [0.5, 1.0, 1.5]},
                {"config": "8x4", "optimizer": "Adam", "epochs": 1, "train_subset": 5000,
                 "test_subset": 1000, "seeds": [0, 1], "test_every": 0})


BEYOND_STUDY_SEEDS = [10, 11]
"""Seeds of the option grid for the estimators after ReinMax: outside the paper's 0-9, so that the
runs that report numbers (seeds 0-2 at the paper's scale) are not the ones that chose the options."""

BEYOND_OPTION_GRID = {
    "ReinMax-CV": [{"eta": eta, "tau2": tau2} for eta in (0.1, 0.5, 1.0) for tau2 in (0.5, 1.0, 1.5)],
    "ReDGE": [{"t_1": t_1} for t_1 in (0.3, 0.5, 0.7, 0.9)],
    "ReinDGE": [{"t_1": t_1} for t_1 in (0.3, 0.5, 0.7, 0.9)],
    "ReinMax-Rao": [{}],
    "ReinMax": [{}],
}
"""The small grid of each new estimator's own options (ReinMax-CV's eta and tau2 from the authors'
sweep ranges, ReDGE's and ReinDGE's t_1 below 1, three steps), with ReinMax-Rao (no option to
choose: R = 100) and ReinMax as the reference at the same scale."""


def vae_beyond() -> Grid:
    """The estimators after ReinMax on 8x4 at a study scale, to choose their options before the
    paper-scale run (chapter 11): Table 8's ReinMax row for 8x4 (optimizer, lr, tau), 10 epochs over the
    first 30,000 images (3,000 updates), seeds 10 and 11, test -ELBO on all 10,000 images after the
    last epoch. Selected like Table 8 (``--select table8``: the lowest final train -ELBO per method)."""
    pairs = [[method, {method: options} if options else {}]
             for method, grid in BEYOND_OPTION_GRID.items() for options in grid]
    return Grid("vae", {"method+method_options": pairs},
                {"config": "8x4", "epochs": 10, "train_subset": 30000, "test_every": 0,
                 "seeds": BEYOND_STUDY_SEEDS})


NAMED_GRIDS: Dict[str, Callable[[], Grid]] = {
    "polynomial-table7": polynomial_table7, "figure8-10": figure8_10,
    "vae-table7": vae_table7, "vae-figure2": vae_figure2, "vae-book": vae_book,
    "vae-beyond": vae_beyond}


def named_grid(name: str) -> Grid:
    if name not in NAMED_GRIDS:
        raise ValueError(f"grid must be a JSON file or one of {list(NAMED_GRIDS)}; got {name!r}")
    return NAMED_GRIDS[name]()
