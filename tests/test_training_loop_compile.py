"""torch.compile in a training loop: a temperature annealed at every step, and the Bernoulli
estimators (and layers holding them) compiled with logits that require grad.

A compiled step counts its compilations and its runs through a backend that wraps ``aot_eager``:
fifty steps with a changing temperature compile at most twice (dynamo compiles the first call
with the float as a constant, and once more with it symbolic when it sees it change) and run
compiled every time (a recompile limit hit would fall back to eager, and the run count would
fall short). Every step's loss and gradient equal eager code's, so the temperature compiled
code uses is the step's, not a constant of the first graph.
"""
import pytest
import torch

import reinmax
from torch._dynamo.utils import counters
from reinmax import registry
from reinmax.estimators import schedules
from reinmax.estimators.nn import StraightThrough

STEPS = 50
OPTIONS = {"GR-MCK-Bernoulli": {"K": 4}}
BERNOULLI = registry.names("bernoulli")


@pytest.fixture(autouse=True)
def _fresh_compiler():
    torch._dynamo.reset()
    counters.clear()
    reinmax.set_validate_args(False)
    # random numbers drawn in traced code: torch.rand as eager code draws them
    with torch._inductor.config.patch(fallback_random=True):
        yield
    reinmax.set_validate_args(True)
    torch._dynamo.reset()


class Counting:
    """A torch.compile backend: aot_eager, counting the runs of the graphs it compiles.
    (Dynamo may call a backend twice for one graph when it restarts its analysis; the graphs
    compiled are counted by dynamo's own counter, see _graphs.)"""

    def __init__(self):
        self.runs = 0

    def __call__(self, gm, example_inputs):
        compiled = torch._dynamo.lookup_backend("aot_eager")(gm, example_inputs)

        def run(*args):
            self.runs += 1
            return compiled(*args)
        return run


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]


def _taus():
    """An annealed temperature, different at every step (never exactly 1)."""
    return [2.0 * 0.97 ** i for i in range(STEPS)]


def _loss(fn, x, tau, sample, w, **options):
    y_hard, y_soft = fn(x, tau, sample=sample, **options)
    return (torch.sin(y_hard * w + x)).sum() + (y_soft * w.flip(0)).sum()


def _inputs(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, n, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, n, generator=g, dtype=torch.float64)
    return x, w, torch.randint(0, n, (3,), generator=g)


def test_an_annealed_temperature_compiles_once_or_twice():
    """ST, ReinMax, STGS and GST in one fullgraph step whose tau, a Python float, changes at
    every call: at most two graphs for fifty steps, every step compiled and equal to eager. Both
    custom operators (ReinMax and STGS with two categories) and both general forms (ST's
    Function and GST's softmax, with five); the layer test covers the other combinations, with
    a 0-d tensor tau (one graph)."""
    calls = [("ST", 5), ("ReinMax", 2), ("STGS", 2), ("GST-1.0", 5)]
    inputs = [_inputs(n, seed) for seed, (_, n) in enumerate(calls)]
    xs = tuple(x for x, _, _ in inputs)

    def step(xs, tau):
        return sum(_loss(reinmax.get_estimator(name), x, tau, sample, w)
                   for (name, _), x, (_, w, sample) in zip(calls, xs, inputs))

    backend = Counting()
    compiled = torch.compile(step, backend=backend, fullgraph=True)
    for i, tau in enumerate(_taus()):
        torch.manual_seed(i)       # STGS draws its noise given the sample
        got = compiled(xs, tau)
        got_grads = torch.autograd.grad(got, xs)
        torch.manual_seed(i)
        expected = step(xs, tau)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        for a, b in zip(got_grads, torch.autograd.grad(expected, xs)):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert backend.runs == STEPS, "some steps ran eagerly (recompile limit hit)"
    assert _graphs() <= 2, _graphs()


def test_an_annealed_temperature_under_inductor():
    """The inductor backend itself: the custom operator takes the temperature as a tensor."""
    theta = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(8, 3, 2, dtype=torch.float64)

    def step(theta, tau):
        y_hard, y_soft = reinmax.reinmax(theta.expand(8, 3, 2), tau)
        return (y_hard * w).sum() + (y_soft * w.flip(0)).sum()

    compiled = torch.compile(step, fullgraph=True)
    for i, tau in enumerate(_taus()[:4]):
        torch.manual_seed(i)
        got = torch.autograd.grad(compiled(theta, tau), theta)[0]
        torch.manual_seed(i)
        expected = torch.autograd.grad(step(theta, tau), theta)[0]
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    assert _graphs() <= 2, _graphs()


class Model(torch.nn.Module):
    """A layer per estimator, each on logits with its own number of categories (None: one logit
    per Bernoulli variable), all annealed by the same schedule."""

    def __init__(self, layers, schedule):
        super().__init__()
        self.sizes = [n for _, n in layers]
        self.layers = torch.nn.ModuleList(StraightThrough(name, tau=schedule) for name, _ in layers)

    def forward(self, x, w, samples):
        total = 0.0
        for layer, n, sample in zip(self.layers, self.sizes, samples):
            logits, weight = (x[..., 0], w[..., 0]) if n is None else (x[..., :n], w[..., :n])
            y_hard, y_soft = layer(logits, sample=sample)
            total = total + (torch.sin(y_hard * weight + logits)).sum() + y_soft.pow(2).sum()
        return total

    def step(self):
        for layer in self.layers:
            layer.step()


def test_layers_with_a_schedule_compile_once():
    """A model whose StraightThrough layers (ReinMax with two categories, STGS, GST-p and
    ReinMax-1/n with five, ReinMax-Bernoulli and STGS-Bernoulli) anneal their temperature at
    every step: one fullgraph compile for fifty steps (the layers pass it as a tensor), every
    step compiled and equal to eager code."""
    layers = [("ReinMax", 2), ("STGS", 5), ("GST-p", 5), ("ReinMax-1/n", 5),
              ("ReinMax-Bernoulli", None), ("STGS-Bernoulli", None)]
    model = Model(layers, schedules.exponential(rate=0.05, tau0=2.0, tau_min=0.1, every=1))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 5, generator=g, dtype=torch.float64)
    samples = [torch.randint(0, n or 2, (3,), generator=g) for _, n in layers]
    backend = Counting()
    compiled = torch.compile(model, backend=backend, fullgraph=True)
    seen = []
    for i in range(STEPS):
        torch.manual_seed(i)
        got = torch.autograd.grad(compiled(x, w, samples), x)[0]
        torch.manual_seed(i)
        expected = torch.autograd.grad(model(x, w, samples), x)[0]
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        seen.append(model.layers[0].tau)
        model.step()
    assert len(set(seen)) == STEPS                  # the temperature changed at every step
    assert backend.runs == STEPS, "some steps ran eagerly (recompile limit hit)"
    assert _graphs() == 1, _graphs()


def test_a_layer_whose_tau_is_set_by_hand_compiles_twice_at_most():
    """layer.tau = value between steps (no schedule): one graph at tau = 1 (the estimators'
    shortcuts) and one for every other value."""
    layer = StraightThrough("ST")
    x, w, sample = _inputs(5, seed=5)

    def step(x):
        y_hard, y_soft = layer(x, sample=sample)
        return (torch.sin(y_hard * w + x)).sum() + (y_soft * w).sum()

    backend = Counting()
    compiled = torch.compile(step, backend=backend, fullgraph=True)
    taus = [1.0, 0.5, 0.7, 1.0, 1.3, 2.0]
    for tau in taus:
        layer.tau = tau
        got = torch.autograd.grad(compiled(x), x)[0]
        torch.testing.assert_close(got, torch.autograd.grad(step(x), x)[0], rtol=1e-12, atol=1e-12)
    assert backend.runs == len(taus)
    assert _graphs() <= 2, _graphs()


# ------------------------------------------------------------------ Bernoulli, full graph
@pytest.mark.parametrize("name", BERNOULLI)
def test_bernoulli_estimators_compile_into_one_graph_with_grad(name):
    """fullgraph=True with logits that require grad, forward and backward, given the sample
    and drawing from the global generator: compiled equals eager."""
    fn = reinmax.get_estimator(name)
    options = OPTIONS.get(name, {})
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, generator=g, dtype=torch.float64)
    sample = torch.randint(0, 2, (4, 3), generator=g)

    def step(x, sample):
        total = 0.0
        for kwargs in (dict(sample=sample), {}):
            b, p = fn(x, 1.3, **kwargs, **options)
            total = total + (torch.sin(b * w + x)).sum() + (p * w).sum()
        return total

    torch.manual_seed(3)
    got = torch.compile(step, backend="aot_eager", fullgraph=True)(x, sample)
    got_grad = torch.autograd.grad(got, x)[0]
    torch.manual_seed(3)
    expected = step(x, sample)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(got_grad, torch.autograd.grad(expected, x)[0], rtol=1e-12, atol=1e-12)
