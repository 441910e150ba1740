"""reinmax.reporting.params.shared_run_folder: notebooks of a chapter share a folder exactly when their
settings (apart from the method lists) agree."""
import dataclasses

import pytest

from reinmax.experiments.vae import VAEConfig
from reinmax.reporting.params import shared_run_folder


def test_same_settings_share_a_folder_whatever_the_methods():
    a = VAEConfig(configs=["8x4"], methods=["ST", "ReinMax"], epochs=2, out_dir=None)
    b = dataclasses.replace(a, methods=("ReinMax",), gradient_methods=("ReinMax",), out_dir="x")
    assert shared_run_folder("runs/vae", a) == shared_run_folder("runs/vae/", b)
    assert shared_run_folder("runs/vae", a).startswith("runs/vae/")


@pytest.mark.parametrize("change", [dict(epochs=3), dict(seeds=(0, 1, 2)), dict(train_subset=500),
                                    dict(device="cpu"), dict(gradient_every=1)])
def test_other_settings_get_another_folder(change):
    a = VAEConfig(configs=["8x4"], epochs=2)
    assert shared_run_folder("runs", a) != shared_run_folder("runs", dataclasses.replace(a, **change))


def test_needs_a_config():
    with pytest.raises(TypeError, match="config must be an experiment config"):
        shared_run_folder("runs", {"epochs": 2})
