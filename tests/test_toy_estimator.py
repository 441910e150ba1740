"""Adding an estimator is one registration: a toy straight-through estimator registered in a
fixture reaches get_estimator, the plot style, the estimator benchmark's quick mode and both
experiments' run(), in seconds, with no list edited anywhere (the point of reinmax.estimators.registry)."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import reinmax
from reinmax import registry

TOY = Path(__file__).resolve().parent / "toy_estimator.py"
BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "estimators.py"


@pytest.fixture
def toy():
    """Import tests/toy_estimator.py afresh (which registers Scaled-ST); unregister afterwards."""
    spec = importlib.util.spec_from_file_location("toy_estimator", TOY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        registry.unregister(module.NAME)
    assert module.NAME not in reinmax.ESTIMATORS


def test_get_estimator_returns_the_toy_with_its_options(toy):
    assert reinmax.get_estimator("scaled-st") is toy.scaled_st
    assert reinmax.ESTIMATORS[toy.NAME] is toy.scaled_st
    theta = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    sample = torch.tensor([0, 1, 2, 3, 0])
    grads = {}
    for label, estimator in [("st", reinmax.st), ("toy", reinmax.get_estimator(toy.NAME, scale=0.25))]:
        leaf = theta.clone().requires_grad_(True)
        y, _ = estimator(leaf, 1.3, sample=sample)
        assert torch.equal(y.argmax(-1), sample)
        grads[label] = torch.autograd.grad((w * y).sum(), leaf)[0]
    assert torch.allclose(grads["toy"], 0.25 * grads["st"], rtol=1e-12, atol=1e-15)
    with pytest.raises(TypeError, match=r"Scaled-ST has no option 'K'; its options: scale"):
        reinmax.get_estimator(toy.NAME, K=3)


def test_plot_style_gives_the_toy_an_unused_colour(toy):
    from reinmax import plots
    style = plots.style(toy.NAME)
    others = {registry.get_spec(name).style["color"] for name in registry.names() if name != toy.NAME}
    assert style["label"] == toy.NAME and style["color"] not in others


def test_estimator_benchmark_quick_mode_measures_the_toy(tmp_path):
    output = tmp_path / "benchmark.json"
    done = subprocess.run([sys.executable, str(BENCHMARK), "--quick", "--threads", "1", "--no-memory",
                           "--register", str(TOY), "--json", str(output)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\nScaled-ST " in done.stdout
    for result in json.loads(output.read_text())["results"]:
        assert result["rows"]["Scaled-ST"]["ms"]["median"] > 0


# ----------------------------------------------------------------------------------------------
# The experiments: each takes its method list from the registry, so the toy needs no edit there.
def train_polynomial_with(name):
    from reinmax.experiments import polynomial
    config = polynomial.PolynomialConfig(p=2.0, L=4, batch_size=8, steps=3, epochs=1, seeds=[0, 1],
                                         methods=[name], taus=1.0, device="cpu")
    return polynomial.method_run(polynomial.run(config, progress=False), name)


def train_vae_with(name):
    from reinmax.experiments import vae
    # A method without a Table 8 row of its own trains with ReinMax's row.
    config = vae.VAEConfig(configs=["8x4"], methods=[name], seeds=[0], epochs=1, train_subset=100,
                           test_subset=50, device="cpu")
    return vae.run(config, progress=False)["runs"][0]
# ----------------------------------------------------------------------------------------------


def test_polynomial_run_trains_with_the_toy(toy):
    result = train_polynomial_with(toy.NAME)
    assert all(math.isfinite(v) for v in json.loads(json.dumps(result["exact_loss"]))[0])


from conftest import needs_mnist  # noqa: E402


@needs_mnist
def test_vae_run_trains_with_the_toy(toy):
    run = train_vae_with(toy.NAME)
    assert run["method"] == toy.NAME
    assert all(math.isfinite(v) for v in run["final"]["train_neg_elbo"]["per_seed"])
