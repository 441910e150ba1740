"""Guard rails where a wrong call would give a silently wrong answer (issue 13).

* Checks off means unchecked, but the fast paths never turn an out-of-range ``sample=`` index
  into a real category: such rows come out NaN, decided on the device (no host read).
* On a GPU the value checks (NaN logits, sample range) do not read device values on the host at
  every call: they run there only with ``set_validate_args(True, device_values=True)``; shape and
  dtype checks always run. Tested on the CPU with a tensor that claims to be on a GPU and fails
  on any host read of its values.

The score estimators' ``batch_dims`` is tested in test_score.py, the refusal of noisy estimators
by exact enumeration in test_exact.py, options fixed by a name in test_registry.py.
"""
import math
import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import reinmax
from reinmax import registry

ST_NAMES = registry.names("straight-through")
# Every estimator takes sample= on the device, on its general path (n = 5) and its two-category
# fast path (n = 2); each must mark an out-of-range index, not read it as a category.
FAST = [(name, n) for name in ST_NAMES for n in (5, 2)]
OPTIONS = {"GR-MCK": {"K": 8}}     # a small K: the test is about the sample, not the noise


class HostRead(AssertionError):
    """A device value was read on the host."""


class ClaimsDevice(torch.Tensor):
    """A CPU tensor that says it lives on a GPU."""

    @property
    def is_cuda(self):
        return True


class FakeDevice(ClaimsDevice):
    """... and fails on every read of its values on the host (what would synchronise with a
    real device)."""

    def _host_read(self, *args, **kwargs):
        raise HostRead("a device value was read on the host")

    item = tolist = __bool__ = __int__ = __float__ = __index__ = _host_read


class NoHostReads(TorchDispatchMode):
    """Fails on any scalar read (``_local_scalar_dense``, behind item(), bool(), int(), ...)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            raise HostRead(f"a tensor value was read on the host ({func})")
        return func(*args, **(kwargs or {}))


def on_fake_device(tensor):
    return tensor.as_subclass(FakeDevice)


@pytest.fixture
def device_values():
    """Value checks on device tensors for one test, switched back off afterwards."""
    reinmax.set_validate_args(True, device_values=True)
    try:
        yield
    finally:
        reinmax.set_validate_args(True, device_values=False)


# ------------------------------------------------------- unchecked samples are never categories
@pytest.mark.parametrize("name,n", FAST)
@pytest.mark.parametrize("dim", [-1, 0])
def test_unchecked_out_of_range_sample_gives_nan_rows_not_a_category(name, n, dim, no_validation):
    """With checks off, sample=-1 used to index from the end (and n to wrap, or fail in a
    gather); now those rows are NaN and the other rows (values and gradients) are unchanged."""
    estimator = reinmax.get_estimator(name, **OPTIONS.get(name, {}))
    theta = torch.randn(4, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    bad = torch.tensor([0, -1, 1, n])
    good = torch.tensor([0, 0, 1, 0])
    upstream = torch.randn(4, n, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    results = {}
    for key, sample in (("bad", bad), ("good", good)):
        leaf = theta.clone().requires_grad_(True)
        y, _ = estimator(leaf.movedim(-1, dim), 1.3, sample=sample, dim=dim,
                         generator=torch.Generator().manual_seed(3))    # STGS's noise
        y = y.movedim(dim, -1)
        (grad,) = torch.autograd.grad((y.nan_to_num(0.0) * upstream).sum(), leaf)
        results[key] = y.detach(), grad
    y_bad, grad_bad = results["bad"]
    y_good, grad_good = results["good"]
    assert torch.isnan(y_bad[[1, 3]]).all(), y_bad
    assert torch.equal(y_bad[[0, 2]], y_good[[0, 2]])
    assert torch.equal(grad_bad[[0, 2]], grad_good[[0, 2]])


@pytest.mark.parametrize("name,n", FAST)
def test_checked_out_of_range_sample_is_still_an_error(name, n):
    with pytest.raises(ValueError, match=rf"allowed 0..{n - 1}, got min -1"):
        reinmax.get_estimator(name, **OPTIONS.get(name, {}))(torch.zeros(3, n), sample=torch.tensor([0, -1, 1]))


# ----------------------------------------------------- no host reads of device values by default
@pytest.mark.parametrize("name", ST_NAMES)
@pytest.mark.parametrize("n", [2, 5])
def test_device_tensors_are_not_read_on_the_host(name, n):
    """Checks on (the default) and device values unchecked (the default): a call, with and
    without sample=, and its backward read no device value on the host."""
    estimator = reinmax.get_estimator(name, **({"K": 4} if name == "GR-MCK" else {}))
    theta = on_fake_device(torch.randn(6, n, generator=torch.Generator().manual_seed(1)))
    sample = on_fake_device(torch.tensor([0, 1, 0, 1, 1, 0]))
    with NoHostReads():
        for kwargs in ({}, {"sample": sample}):
            leaf = theta.detach().clone().requires_grad_(True)
            y, soft = estimator(leaf, 1.5, **kwargs)
            (y * torch.arange(float(n))).sum().backward()
    assert leaf.grad.shape == (6, n)


@pytest.mark.parametrize("name", registry.names("score"))
def test_score_estimators_read_no_device_value_on_the_host(name):
    theta = on_fake_device(torch.randn(6, 3, generator=torch.Generator().manual_seed(2))).requires_grad_(True)
    with NoHostReads():
        surrogate, _ = reinmax.get_score_estimator(name)(theta, lambda D: D[..., 0])
        surrogate.sum().backward()


def test_device_value_checks_run_when_asked(device_values):
    for n in (2, 3):
        nan_logits = torch.tensor([[0.0, float("nan"), 1.0][:n]]).as_subclass(ClaimsDevice)
        for name in ST_NAMES:
            with pytest.raises(ValueError, match="logits contain NaN"):
                reinmax.get_estimator(name)(nan_logits)
        with pytest.raises(ValueError, match=rf"allowed 0..{n - 1}, got min -1"):
            reinmax.st(torch.zeros(2, n).as_subclass(ClaimsDevice),
                       sample=torch.tensor([0, -1]).as_subclass(ClaimsDevice))


def test_device_values_are_unchecked_by_default():
    """The same NaN logits on the (claimed) device pass unchecked: checks off means unchecked."""
    y, soft = reinmax.st(torch.tensor([[0.0, float("nan"), 1.0]]).as_subclass(ClaimsDevice))
    assert torch.isnan(soft.as_subclass(torch.Tensor)).all()


def test_cheap_checks_run_on_device_tensors_without_host_reads():
    with NoHostReads():
        with pytest.raises(TypeError, match="logits must have a floating dtype"):
            reinmax.reinmax(on_fake_device(torch.zeros(2, 3, dtype=torch.long)))
        with pytest.raises(ValueError, match=r"sample must have the shape of logits without the "
                                             r"category dimension, \(2,\); got \(3,\)"):
            reinmax.st(on_fake_device(torch.zeros(2, 3)), sample=on_fake_device(torch.tensor([0, 1, 2])))
        with pytest.raises(TypeError, match="sample must hold integer category indices"):
            reinmax.st(on_fake_device(torch.zeros(2, 3)), sample=on_fake_device(torch.tensor([0.0, 1.0])))


@pytest.mark.parametrize("n", [2, 5])
def test_unchecked_device_sample_out_of_range_gives_nan_without_host_reads(n):
    """The default on a GPU: the range is not checked, and a bad index is a NaN row."""
    theta = on_fake_device(torch.zeros(3, n))
    with NoHostReads():
        y, _ = reinmax.reinmax(theta, sample=on_fake_device(torch.tensor([0, -1, n])))
    y = y.as_subclass(torch.Tensor)
    assert torch.isnan(y[1:]).all() and torch.equal(y[0], torch.eye(n)[0])


def test_device_values_switch_is_checked():
    with pytest.raises(TypeError, match=r"device_values must be True, False or None; got device_values='yes'"):
        reinmax.set_validate_args(True, device_values="yes")


# ------------------------------------------------------- GST where probabilities underflow
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_gst_p_in_half_precision_without_sample_is_one_hot_and_finite(dtype):
    """p_d = 1 in half precision made the gap -log(1 - p_d) / p_d infinite (1 - 1e-5 rounds to
    1), and a spread of the logits beyond float16's range gave inf - inf: a NaN forward value
    and NaN gradients."""
    logits = torch.tensor([[-1.0, 6e4, -1e4]] * 4, dtype=dtype, requires_grad=True)
    y, _ = reinmax.get_estimator("GST-p")(logits, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, torch.tensor([[0.0, 1.0, 0.0]] * 4, dtype=dtype))
    grad, = torch.autograd.grad((y * torch.arange(3.0).to(dtype)).sum(), logits)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize("name", ["GST-p", "GST-1.0"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [-math.inf, -1e4], ids=["masked", "underflowing"])
def test_gst_given_a_sample_of_probability_zero_is_one_hot_and_finite(name, dtype, masked):
    """sample= a category whose probability is 0: GST-p's gap was 0 / 0 (NaN), and raising a
    -inf logit to the top was -inf + inf; GST-p's gap there is its limit 1."""
    logits = torch.tensor([[2.0, masked, 0.5, 1e4 if masked != -math.inf else 3.0]], dtype=dtype,
                          requires_grad=True)
    y, _ = reinmax.get_estimator(name)(logits, sample=torch.tensor([1]))
    assert torch.equal(y, torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=dtype))
    grad, = torch.autograd.grad((y * torch.arange(4.0, dtype=dtype)).sum(), logits)
    assert torch.isfinite(grad).all()


def test_gst_p_gap_at_an_underflowing_sample_is_the_limit_one():
    """With the gap's limit 1, GST-p given an underflowing sample moves the logits as GST-1.0
    does (the same relaxation, so the same gradient)."""
    logits = torch.tensor([[2.0, -1e4, 0.5, 1.0]], dtype=torch.float64, requires_grad=True)
    grads = []
    for name in ("GST-p", "GST-1.0"):
        y, _ = reinmax.get_estimator(name)(logits, sample=torch.tensor([1]))
        grads.append(torch.autograd.grad((y * torch.arange(4.0, dtype=torch.float64)).sum(), logits)[0])
    assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["ReinMax-1/n", "ReinMax-1/n-authors"])
@pytest.mark.parametrize("n", [2, 4])
def test_uniform_baseline_refuses_a_sample_of_probability_zero(name, n):
    """Its weight 1/(n pi_d) is infinite there: NaN gradients before, a clear error now."""
    logits = torch.zeros(2, n)
    logits[1, 0] = -math.inf
    function = reinmax.get_estimator(name).__name__        # reinmax_uniform_baseline[_authors]
    with pytest.raises(ValueError, match=rf"^{function} weights the sample by 1/\(n pi_d\), "
                                         r"infinite where the sampled category has probability 0"):
        reinmax.get_estimator(name)(logits, sample=torch.tensor([0, 0]))
