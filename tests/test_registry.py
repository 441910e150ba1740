"""The registries: the paper's names, case-insensitive lookup, bound options."""
import pytest
import torch

import reinmax


def test_estimator_names_are_the_papers():
    assert list(reinmax.ESTIMATORS) == ["ST", "ReinMax", "STGS", "GR-MCK", "GST-1.0", "GST-p",
                                        "ReinMax-1/n", "ReinMax-1/n-authors"]
    assert reinmax.ESTIMATORS["ST"] is reinmax.st
    assert reinmax.ESTIMATORS["ReinMax"] is reinmax.reinmax
    assert reinmax.ESTIMATORS["STGS"] is reinmax.stgs
    assert reinmax.ESTIMATORS["GR-MCK"] is reinmax.gumbel_rao
    assert reinmax.ESTIMATORS["ReinMax-1/n"] is reinmax.reinmax_uniform_baseline
    assert reinmax.ESTIMATORS["ReinMax-1/n-authors"] is reinmax.reinmax_uniform_baseline_authors


def test_score_estimator_names():
    assert reinmax.SCORE_ESTIMATORS == {"REINFORCE": reinmax.reinforce, "RLOO": reinmax.rloo}
    assert reinmax.get_score_estimator("rloo") is reinmax.rloo


@pytest.mark.parametrize("spelling", ["ReinMax", "reinmax", "REINMAX", " reinmax "])
def test_lookup_is_case_insensitive(spelling):
    assert reinmax.get_estimator(spelling) is reinmax.reinmax


@pytest.mark.parametrize("name,gap", [("GST-1.0", 1.0), ("gst-p", "p")])
def test_gst_entries_bind_their_gap(name, gap):
    """The registry entry gives the same gradient as gst(..., gap=gap) for the same sample."""
    theta = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    sample = torch.tensor([0, 1, 2, 3, 4, 0])
    grads = []
    for fn in (reinmax.get_estimator(name), lambda *a, **k: reinmax.gst(*a, gap=gap, **k)):
        leaf = theta.clone().requires_grad_(True)
        y, _ = fn(leaf, 0.7, sample=sample)
        grads.append(torch.autograd.grad((y * theta).sum(), leaf)[0])
    assert torch.equal(grads[0], grads[1])
    other = 2.0 if gap == "p" else "p"
    leaf = theta.clone().requires_grad_(True)
    y, _ = reinmax.gst(leaf, 0.7, sample=sample, gap=other)
    assert not torch.allclose(torch.autograd.grad((y * theta).sum(), leaf)[0], grads[0])


def test_get_estimator_binds_options():
    """GR-MCK's K reaches the function: K = 1 and K = 1000 give different gradient spreads."""
    theta = torch.zeros(2000, 3, dtype=torch.float64)
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    spread = {}
    for K in (1, 200):
        estimator = reinmax.get_estimator("gr-mck", K=K)
        leaf = theta.clone().requires_grad_(True)
        y, _ = estimator(leaf, 0.5, generator=torch.Generator().manual_seed(0))
        spread[K] = torch.autograd.grad((y * g).sum(), leaf)[0].var(0).sum().item()
    assert spread[200] < 0.5 * spread[1]
    with pytest.raises(ValueError, match="K must be a positive integer; got K=0"):
        reinmax.get_estimator("GR-MCK", K=0)(theta)


def test_every_registered_estimator_has_the_common_signature():
    theta = torch.randn(4, 3)
    for name, estimator in reinmax.ESTIMATORS.items():
        y, soft = estimator(theta, 1.0, True, dim=-1, sample=torch.tensor([0, 1, 2, 0]),
                            generator=torch.Generator().manual_seed(0))
        assert torch.equal(y.argmax(-1), torch.tensor([0, 1, 2, 0])), name
        assert torch.allclose(soft, torch.softmax(theta, -1)), name
        assert getattr(estimator, "__name__", ""), name


def test_public_api():
    for name in reinmax.__all__:
        assert hasattr(reinmax, name), name
    from reinmax import reinmax as official_name   # drop-in for the official package's import
    y, soft = official_name(torch.randn(2, 3), 1.3)
    assert y.shape == soft.shape == (2, 3)


def test_mean_band_spread_is_checked():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from reinmax import plots
    fig, ax = plt.subplots()
    plots.mean_band(ax, [[1.0, 2.0], [3.0, 4.0]], [0, 1], "ReinMax")
    plots.mean_band(ax, [[1.0, 2.0], [3.0, 4.0]], [0, 1], "ST", spread="range")
    assert [line.get_label() for line in ax.get_lines()] == ["ReinMax", "ST"]
    assert ax.get_lines()[0].get_ydata().tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match="spread"):
        plots.mean_band(ax, [[1.0]], [0], "ST", spread="iqr")
    plt.close(fig)
