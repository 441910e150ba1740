"""The registry: the paper's names, case-insensitive lookup, options checked at lookup, and
every entry's metadata checked against what the estimator does."""
import inspect

import pytest
import torch
from torch import nn

import reinmax
from reinmax import registry
from reinmax.estimators.registry import EstimatorSpec


def test_estimator_names_are_the_papers():
    assert list(reinmax.ESTIMATORS) == ["ST", "ReinMax", "STGS", "GR-MCK", "GST-1.0", "GST-p",
                                        "ReinMax-1/n", "ReinMax-1/n-authors", "ReinMax-Rao",
                                        "ReinMax-CV", "ReDGE", "ReinDGE"]
    assert reinmax.ESTIMATORS["ST"] is reinmax.st
    assert reinmax.ESTIMATORS["ReinMax"] is reinmax.reinmax
    assert reinmax.ESTIMATORS["STGS"] is reinmax.stgs
    assert reinmax.ESTIMATORS["GR-MCK"] is reinmax.gumbel_rao
    assert reinmax.ESTIMATORS["ReinMax-1/n"] is reinmax.reinmax_uniform_baseline
    assert reinmax.ESTIMATORS["ReinMax-1/n-authors"] is reinmax.reinmax_uniform_baseline_authors


def test_score_estimator_names():
    assert list(reinmax.SCORE_ESTIMATORS) == ["REINFORCE", "RLOO", "DisARM-Tree"]
    assert reinmax.SCORE_ESTIMATORS["RLOO"] is reinmax.rloo
    assert reinmax.SCORE_ESTIMATORS["DisARM-Tree"].func is reinmax.estimators.disarm_tree.disarm_tree
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
    with pytest.raises(ValueError, match="GR-MCK: option K must be an integer >= 1, or 'quadrature'; got K=0"):
        reinmax.get_estimator("GR-MCK", K=0)          # refused when built, not at the first call


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


# -------------------------------------------------------------------- options at lookup
def test_unknown_option_names_estimator_option_and_allowed_ones():
    with pytest.raises(TypeError, match=r"GR-MCK has no option 'k'; its options: K \(default 1000\)"):
        reinmax.get_estimator("GR-MCK", k=10)
    with pytest.raises(TypeError, match=r"ST has no option 'K'; its options: none"):
        reinmax.get_estimator("st", K=10)
    with pytest.raises(TypeError, match=r"RLOO has no option 'K'; its options: num_samples \(default 2\)"):
        reinmax.get_score_estimator("RLOO", K=4)


def test_an_option_the_name_fixes_may_be_repeated_but_not_changed():
    fixed = reinmax.get_estimator("GST-1.0", gap=1.0)
    assert fixed.func is reinmax.gst and fixed.keywords == {"gap": 1.0}
    with pytest.raises(ValueError, match=r"GST-1.0 fixes gap=1.0 \(its name says so\); got gap=0.3"):
        reinmax.get_estimator("GST-1.0", gap=0.3)
    with pytest.raises(ValueError, match=r"got gap='p'; GST-p is the entry with gap='p'"):
        reinmax.get_estimator("GST-1.0", gap="p")
    with pytest.raises(ValueError, match=r"GST-p fixes gap='p'"):
        reinmax.get_estimator("GST-p", gap=1.0)
    with pytest.raises(ValueError, match=r"got gap=True"):       # True == 1.0, but is no gap
        reinmax.get_estimator("GST-1.0", gap=True)


def test_options_bind_and_defaults_are_the_functions_own():
    rloo4 = reinmax.get_score_estimator("RLOO", num_samples=4)
    assert rloo4.func is reinmax.rloo and rloo4.keywords == {"num_samples": 4}
    for spec in registry.specs():
        parameters = inspect.signature(spec.function or spec.factory).parameters
        for option, default in {**spec.options, **spec.fixed}.items():
            assert option in parameters, (spec.name, option)
        for option, default in spec.options.items():
            assert parameters[option].default == default, (spec.name, option)


# -------------------------------------------------------------------- metadata = behaviour
def _call_with_sample(spec, generator):
    """One call of the entry with a given sample; returns the gradient of a fixed loss."""
    theta = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    weights = torch.randn(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    leaf = theta.clone().requires_grad_(True)
    estimator = spec.build()
    if spec.family == "straight-through":
        y, _ = estimator(leaf, 0.7, sample=torch.tensor([0, 1, 2, 3, 4, 0]), generator=generator)
        loss = (weights * y).sum()
    elif spec.family == "bernoulli":                        # one logit per binary variable
        b, _ = estimator(leaf, 0.7, sample=torch.arange(30).reshape(6, 5) % 2, generator=generator)
        loss = (weights * b).sum()
    elif spec.family == "bernoulli-score":                  # modules: the same parameters twice
        with torch.random.fork_rng():
            torch.manual_seed(0)
            estimator = spec.build(**({"num_latents": 5} if "num_latents" in spec.options else {}))
        estimator = estimator.double()
        f = lambda b: (b * weights).sum(-1).sin()              # noqa: E731
        K = estimator.num_samples
        sample = (torch.arange(K * 30).reshape(K, 6, 5) % 3 == 0).double()
        kwargs = {} if spec.name == "RELAX" else {"samples": sample}
        out = estimator(leaf, f, generator, **kwargs)
        loss = estimator.surrogate(leaf, out)
    else:
        f = lambda D: (D * weights).sum(-1).sin()              # noqa: E731
        draws = {**spec.options, **spec.fixed}.get("num_samples")    # RLOO's K; DisARM-Tree's pair
        leading = (draws,) if draws else ()
        sample = torch.arange(30).reshape(6, 5)[..., 0] % 5
        sample = sample.expand(leading + sample.shape) if leading else sample
        surrogate, _ = estimator(leaf, f, sample=sample, generator=generator)
        loss = surrogate.sum()
    return torch.autograd.grad(loss, leaf)[0]


@pytest.mark.parametrize("name", registry.names())
def test_draws_noise_says_whether_the_generator_is_used_given_the_sample(name):
    spec = registry.get_spec(name)
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    _call_with_sample(spec, generator)
    assert (not torch.equal(generator.get_state(), before)) == spec.draws_noise


@pytest.mark.parametrize("name", registry.names())
def test_sample_only_backward_says_whether_the_gradient_is_fixed_by_the_sample(name):
    spec = registry.get_spec(name)
    grads = [_call_with_sample(spec, torch.Generator().manual_seed(seed)) for seed in (0, 1)]
    assert torch.equal(grads[0], grads[1]) == spec.sample_only_backward


def test_noise_free_with_says_which_options_draw_no_noise():
    """GR-MCK with K='quadrature' (two categories) uses no generator given the sample."""
    spec = registry.get_spec("GR-MCK")
    assert spec.draws_noise_with({}) and spec.draws_noise_with({"K": 10})
    assert not spec.draws_noise_with({"K": "quadrature"})
    generator = torch.Generator().manual_seed(0)
    before = generator.get_state()
    reinmax.gumbel_rao(torch.zeros(3, 2), K="quadrature", sample=torch.tensor([0, 1, 1]),
                       generator=generator)
    assert torch.equal(generator.get_state(), before)
    with pytest.raises(ValueError, match=r"noise_free_with names k, which are not its options"):
        EstimatorSpec(name="Toy", family="straight-through", function=_scaled, draws_noise=True,
                      noise_free_with={"k": 1})


def test_derived_lists():
    assert registry.names(draws_noise=True) == [
        "STGS", "GR-MCK", "STGS-Bernoulli", "GR-MCK-Bernoulli", "RELAX", "Segment-Midpoint",
        "Segment-Ralston", "Segment-Simpson", "ReinMax-Rao", "ReinMax-CV", "ReDGE", "ReinDGE"]
    assert registry.names("segment", sample_only_backward=True) == ["Segment-Euler", "Segment-Trapezoid"]
    assert registry.names(exact_sample=False) == ["ReDGE", "ReinDGE"]
    assert registry.names("bernoulli", sample_only_backward=True) == ["ST-Bernoulli", "ReinMax-Bernoulli"]
    assert registry.names("straight-through", sample_only_backward=True) == [
        "ST", "ReinMax", "GST-1.0", "GST-p", "ReinMax-1/n", "ReinMax-1/n-authors"]
    assert registry.names("score") == ["REINFORCE", "RLOO", "DisARM-Tree"]
    from reinmax.experiments.vae import NOISY_METHODS
    assert set(NOISY_METHODS) == set(registry.names(draws_noise=True))
    assert "ST" not in NOISY_METHODS
    with pytest.raises(ValueError, match=r"unknown filter 'noisy'; filters: family, draws_noise"):
        registry.names(noisy=True)
    with pytest.raises(ValueError, match=r"family must be one of 'straight-through', 'score', 'bernoulli', 'bernoulli-score', 'segment'; got family='st'"):
        registry.names("st")


def test_every_estimator_has_a_style_and_the_plots_use_it():
    from reinmax import plots
    colours = [registry.get_spec(name).style["color"] for name in registry.names()]
    assert len(set(colours)) == len(colours)          # one colour per method across the book
    assert plots.style("ReinMax") == dict(color="#d62728", linestyle="-", label="ReinMax")
    assert plots.style("Simpson") == {"label": "Simpson"}     # not an estimator: a label only


# -------------------------------------------------------------------- register / unregister
def _scaled(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None, scale=0.5):
    y, soft = reinmax.st(logits, tau, hard, dim=dim, sample=sample, generator=generator)
    return soft + scale * (y - soft), soft


def test_register_refuses_duplicates_and_bad_specs():
    with pytest.raises(ValueError, match=r"an estimator named 'ReinMax' is already registered"):
        registry.register(EstimatorSpec(name="reinmax", family="straight-through", function=_scaled))
    with pytest.raises(TypeError, match=r"register takes an EstimatorSpec; got function"):
        registry.register(_scaled)
    with pytest.raises(ValueError, match=r"family must be one of 'straight-through', 'score', 'bernoulli', 'bernoulli-score', 'segment'; got family='ST'"):
        EstimatorSpec(name="Toy", family="ST", function=_scaled)
    with pytest.raises(ValueError, match=r"give exactly one of function="):
        EstimatorSpec(name="Toy", family="score")
    with pytest.raises(ValueError, match=r"give exactly one of function="):
        EstimatorSpec(name="Toy", family="score", function=_scaled, factory=_scaled)
    with pytest.raises(ValueError, match=r"non-empty string without surrounding spaces; got name=' Toy'"):
        EstimatorSpec(name=" Toy", family="score", function=_scaled)
    with pytest.raises(ValueError, match=r"'Toy': scale cannot be both an option and fixed"):
        EstimatorSpec(name="Toy", family="straight-through", function=_scaled,
                      options={"scale": 0.5}, fixed={"scale": 0.5})
    with pytest.raises(ValueError, match=r"cannot have a backward that depends only on the sample"):
        EstimatorSpec(name="Toy", family="straight-through", function=_scaled, draws_noise=True,
                      sample_only_backward=True)
    with pytest.raises(ValueError, match=r"unknown estimator 'Toy'; valid names: ST, ReinMax"):
        registry.unregister("Toy")
    spec = EstimatorSpec(name="Toy", family="straight-through", function=_scaled)
    with pytest.raises(dataclasses_frozen_error()):
        spec.name = "Other"
    with pytest.raises(TypeError):
        spec.options["scale"] = 1.0          # read-only mappings


def dataclasses_frozen_error():
    import dataclasses
    return dataclasses.FrozenInstanceError


def test_views_follow_registrations_and_refuse_writes():
    before = list(reinmax.ESTIMATORS)
    spec = registry.register(EstimatorSpec(name="Half-ST", family="straight-through",
                                           function=_scaled, options={"scale": 0.5}))
    try:
        assert list(reinmax.ESTIMATORS) == before + ["Half-ST"]
        assert reinmax.ESTIMATORS["Half-ST"] is _scaled
        assert "Half-ST" not in reinmax.SCORE_ESTIMATORS
        assert spec.style["color"] == registry.DEFAULT_COLOURS[0]   # a colour no one else uses
        assert reinmax.get_estimator("half-st", scale=0.25).keywords == {"scale": 0.25}
        from reinmax.experiments import polynomial
        binary = registry.names("bernoulli-score")          # listed after the categorical ones
        score = registry.names("score")
        assert "Half-ST" in polynomial.methods() and polynomial.methods()[-1 - len(score) - len(binary):] == [
            "Half-ST"] + score + binary
    finally:
        registry.unregister("Half-ST")
    assert list(reinmax.ESTIMATORS) == before and "Half-ST" not in polynomial.methods()
    with pytest.raises(TypeError):
        reinmax.ESTIMATORS["Half-ST"] = _scaled


class _LearnedScale(nn.Module):
    """A stateful toy: ST with a learned scale (a stand-in for learned control variates)."""

    def __init__(self, init: float = 1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(init))

    def forward(self, logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None):
        y, soft = reinmax.st(logits, tau, hard, dim=dim, sample=sample, generator=generator)
        return soft + self.scale * (y - soft).detach() + (y - soft) - (y - soft).detach(), soft


def test_factory_entries_build_a_new_module_per_lookup():
    registry.register(EstimatorSpec(name="Learned-ST", family="straight-through",
                                    factory=_LearnedScale, options={"init": 1.0}))
    try:
        first, second = reinmax.get_estimator("Learned-ST"), reinmax.get_estimator("Learned-ST", init=2.0)
        assert isinstance(first, _LearnedScale) and first is not second
        assert first.scale.item() == 1.0 and second.scale.item() == 2.0
        y, _ = second(torch.zeros(3, 4), sample=torch.tensor([0, 1, 2]))
        assert torch.equal(y.detach().argmax(-1), torch.tensor([0, 1, 2]))
        assert isinstance(reinmax.ESTIMATORS["Learned-ST"], _LearnedScale)
        assert reinmax.ESTIMATORS["Learned-ST"] is not reinmax.ESTIMATORS["Learned-ST"]
    finally:
        registry.unregister("Learned-ST")


def test_spec_of_finds_the_entry_behind_a_callable():
    """exact enumeration judges an estimator by its entry (reinmax.estimators.registry.spec_of)."""
    import functools
    assert registry.spec_of(reinmax.stgs).name == "STGS"
    assert registry.spec_of(reinmax.get_estimator("GR-MCK", K=5)).name == "GR-MCK"
    assert registry.spec_of(reinmax.get_estimator("GST-p")).name == "GST-p"
    assert registry.spec_of(functools.partial(reinmax.gst, gap="p")).name == "GST-p"
    assert registry.spec_of(functools.partial(functools.partial(reinmax.gst, gap="p"), gap=1.0)).name == "GST-1.0"
    assert registry.spec_of(functools.partial(reinmax.gst, gap=0.3)).sample_only_backward
    assert registry.spec_of(lambda logits, tau=1.0, **kw: reinmax.st(logits, tau, **kw)) is None
