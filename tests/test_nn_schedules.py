"""reinmax.estimators.nn.StraightThrough (a layer holding the estimator and tau) and reinmax.estimators.schedules."""
import math

import pytest
import torch

import reinmax
from reinmax import schedules
from reinmax.estimators.nn import StraightThrough


# ----------------------------------------------------------------- schedules
def test_gdas_linear_is_gdas_formula():
    """NATS-Bench's search-cell.py: tau = tau_max - (tau_max - tau_min) * e / (E - 1)."""
    schedule = schedules.gdas_linear(epochs=100)
    assert schedule(0) == 10.0 and math.isclose(schedule(99), 0.1, rel_tol=1e-12)
    for epoch in range(100):
        assert math.isclose(schedule(epoch), 10 - 9.9 * epoch / 99, rel_tol=1e-12)
    assert all(schedule(e) > schedule(e + 1) for e in range(99))
    assert math.isclose(schedule(150), 0.1, rel_tol=1e-12)          # after the last epoch
    assert schedules.gdas_linear(1)(0) == 10.0                     # E - 1 = 0: no division
    assert schedules.gdas_linear(5, tau_max=2.0, tau_min=1.0)(2) == 1.5
    assert repr(schedule) == "gdas_linear(epochs=100, tau_max=10.0, tau_min=0.1)"


def test_exponential_is_jang_et_al():
    schedule = schedules.exponential(rate=1e-4)
    assert schedule(0) == schedule(499) == 1.0
    assert math.isclose(schedule(500), math.exp(-0.05), rel_tol=1e-15)
    assert schedule(999) == schedule(500) > schedule(1000)          # updated every 500 steps
    assert schedule(10 ** 6) == 0.5                                  # floor at tau_min
    fast = schedules.exponential(rate=0.1, tau0=2.0, tau_min=0.1, every=1)
    assert [round(fast(t), 12) for t in range(3)] == [2.0, round(2 * math.exp(-0.1), 12),
                                                      round(2 * math.exp(-0.2), 12)]
    assert schedules.exponential(rate=0.0)(10 ** 9) == 1.0
    assert schedules.constant(1.3)(12345) == 1.3
    assert repr(schedules.constant()) == "constant(tau=1.0)"


def test_schedules_check_their_inputs():
    with pytest.raises(ValueError, match=r"epochs must be an integer >= 1; got epochs=0"):
        schedules.gdas_linear(0)
    with pytest.raises(ValueError, match=r"tau_min must not exceed tau_max"):
        schedules.gdas_linear(10, tau_max=0.1, tau_min=10)
    with pytest.raises(ValueError, match=r"tau_min must be a positive finite number"):
        schedules.gdas_linear(10, tau_min=0.0)
    with pytest.raises(ValueError, match=r"rate must be a non-negative finite number; got rate=-1"):
        schedules.exponential(rate=-1)
    with pytest.raises(ValueError, match=r"every must be an integer >= 1; got every=0"):
        schedules.exponential(rate=1e-4, every=0)
    with pytest.raises(TypeError, match=r"tau must be a positive finite number; got tau='1'"):
        schedules.constant("1")
    with pytest.raises(ValueError, match=r"epoch must be an integer >= 0; got epoch=-1"):
        schedules.gdas_linear(10)(-1)
    with pytest.raises(TypeError, match=r"step must be an integer >= 0; got step=1.5"):
        schedules.exponential(rate=1e-4)(1.5)
    with pytest.raises(TypeError, match=r"got epoch=True"):
        schedules.gdas_linear(10)(True)


# ----------------------------------------------------------------- the layer
def _grad(layer_or_fn, logits, seed, w, **kwargs):
    leaf = logits.clone().requires_grad_(True)
    y, soft = layer_or_fn(leaf, generator=torch.Generator().manual_seed(seed), **kwargs)
    (grad,) = torch.autograd.grad((w * y).sum() + (w * soft).sum(), leaf)
    return y.detach(), grad


@pytest.mark.parametrize("name,options", [("ReinMax", {}), ("ST", {}), ("GR-MCK", {"K": 7}),
                                          ("GST-1.0", {})])
def test_layer_is_the_estimator(name, options):
    logits = torch.randn(8, 5, dtype=torch.float64)
    w = torch.randn(8, 5, dtype=torch.float64)
    layer = StraightThrough(name, tau=1.3, **options)
    fn = reinmax.get_estimator(name, **options)
    y, grad = _grad(layer, logits, 3, w)
    y2, grad2 = _grad(lambda x, **k: fn(x, 1.3, **k), logits, 3, w)
    assert torch.equal(y, y2) and torch.equal(grad, grad2)
    layer.eval()                                         # eval still samples by default
    y3, grad3 = _grad(layer, logits, 3, w)
    assert torch.equal(y3, y2) and torch.equal(grad3, grad2)


def test_bernoulli_layer_and_sample_only_output():
    logits = torch.randn(4, 3, dtype=torch.float64)
    layer = StraightThrough("ReinMax-Bernoulli", tau=0.8, return_soft=False)
    b = layer(logits, generator=torch.Generator().manual_seed(1))
    b2, _ = reinmax.estimators.bernoulli.reinmax(logits, 0.8, generator=torch.Generator().manual_seed(1))
    assert torch.equal(b, b2)
    layer.eval_mode = "argmax"
    layer.eval()
    assert torch.equal(layer(logits), (logits > 0).double())


def test_argmax_in_eval_when_asked():
    logits = torch.randn(6, 4, 3, requires_grad=True)
    layer = StraightThrough("STGS", dim=1, eval_mode="argmax").eval()
    y, soft = layer(logits)
    assert torch.equal(y, torch.nn.functional.one_hot(logits.argmax(1), 4).movedim(-1, 1).float())
    assert torch.allclose(soft, torch.softmax(logits, 1)) and not y.requires_grad
    layer.train()
    y, _ = layer(logits, generator=torch.Generator().manual_seed(0))
    assert y.requires_grad and torch.equal(y.sum(1), torch.ones(6, 3))


def test_tau_number_or_schedule_and_its_counter():
    layer = StraightThrough("STGS", tau=schedules.gdas_linear(epochs=5))
    assert layer.tau == 10.0 and layer.t == 0
    assert layer.step() == pytest.approx(10 - 9.9 / 4) and layer.t == 1
    assert layer.step(4) == pytest.approx(0.1)
    state = layer.state_dict()
    fresh = StraightThrough("STGS", tau=schedules.gdas_linear(epochs=5))
    fresh.load_state_dict(state)                   # a resumed run continues its schedule
    assert fresh.t == 4 and fresh.tau == pytest.approx(0.1)
    assert repr(layer) == ("StraightThrough(estimator='STGS', tau=gdas_linear(epochs=5, "
                           "tau_max=10.0, tau_min=0.1), t=4)")
    layer.tau = 0.5
    assert layer.tau == 0.5 and layer.schedule is None
    assert repr(layer) == "StraightThrough(estimator='STGS', tau=0.5)"
    layer.tau = lambda t: 2.0 ** -t
    assert layer.tau == 2.0 ** -4
    # the estimator sees the current temperature
    logits, w = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)
    _, grad = _grad(layer, logits, 0, w)
    _, grad2 = _grad(lambda x, **k: reinmax.stgs(x, 2.0 ** -4, **k), logits, 0, w)
    assert torch.equal(grad, grad2)
    big = StraightThrough("gr-mck", K=10, dim=0, eval_mode="argmax", return_soft=False)
    assert repr(big) == ("StraightThrough(estimator='GR-MCK', tau=1.0, K=10, dim=0, "
                         "return_soft=False, eval_mode='argmax')")


def test_layer_checks_its_arguments():
    with pytest.raises(ValueError, match=r"unknown estimator 'Foo'; valid names: ST, ReinMax"):
        StraightThrough("Foo")
    with pytest.raises(ValueError, match=r"RLOO is a score estimator"):
        StraightThrough("RLOO")
    with pytest.raises(TypeError, match=r"ST has no option 'K'"):
        StraightThrough("ST", K=3)
    with pytest.raises(ValueError, match=r"tau must be a positive finite number"):
        StraightThrough("ST", tau=-1.0)
    with pytest.raises(ValueError, match=r"eval_mode must be one of 'sample', 'argmax'; got eval_mode='mode'"):
        StraightThrough("ST", eval_mode="mode")
    with pytest.raises(ValueError, match=r"schedule .* gave tau=0.0 at t=0"):
        StraightThrough("ST", tau=lambda t: 0.0)
    layer = StraightThrough("ST", tau=schedules.gdas_linear(3))
    with pytest.raises(ValueError, match=r"t must be an integer >= 0; got t=-2"):
        layer.step(-2)
