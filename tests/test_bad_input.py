"""Bad input is a clear error: which argument, which value, what is allowed.

Every message is matched with ``pytest.raises(match=...)`` so that a vaguer message fails the
test. The data-dependent checks can be switched off with ``set_validate_args(False)``.
"""
import math
import re

import numpy as np
import pytest
import torch

import reinmax
from reinmax import registry
from reinmax.estimators.bernoulli_score import build_binary_score_estimator
from reinmax.estimators.checks import check_sample
from reinmax.estimators.nn import StraightThrough

# Every registered straight-through estimator, by the name the paper prints.
ALL = {name: reinmax.get_estimator(name) for name in registry.names("straight-through")}
NAMES = list(ALL)
WITH_SOFT_FORM = ["STGS", "GR-MCK"]     # hard=False returns the relaxation; the others refuse it
HARD_ONLY = [name for name in NAMES if name not in WITH_SOFT_FORM]
LOGITS = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))


def call(name, logits=LOGITS, *args, **kwargs):
    return ALL[name](logits, *args, **kwargs)


# ----------------------------------------------------------------------------- temperature
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tau,match", [
    (0.0, r"tau must be a positive finite number \(tau > 0\); got tau=0.0"),
    (-1.0, r"tau must be a positive finite number \(tau > 0\); got tau=-1.0"),
    (float("nan"), r"tau must be a positive finite number \(tau > 0\); got tau=nan"),
    (math.inf, r"tau must be a positive finite number \(tau > 0\); got tau=inf"),
    (-math.inf, r"got tau=-inf"),
    (torch.tensor(0.0), r"got tau=0.0"),
])
def test_bad_tau_value(name, tau, match):
    with pytest.raises(ValueError, match=match):
        call(name, LOGITS, tau)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("tau,match", [
    ("1.0", r"tau must be a positive finite number; got tau='1.0' of type str"),
    (None, r"got tau=None of type NoneType"),
    (True, r"got tau=True of type bool"),
    ([1.0], r"got tau=\[1.0\] of type list"),
])
def test_tau_that_is_not_a_number(name, tau, match):
    with pytest.raises(TypeError, match=match):
        call(name, LOGITS, tau)


def test_tau_tensor_with_several_elements():
    with pytest.raises(ValueError, match=r"tau must be a positive finite number; got a tensor of shape \(2,\)"):
        reinmax.reinmax(LOGITS, torch.tensor([1.0, 2.0]))


@pytest.mark.parametrize("tau", [0.01, 0.5, 1, 3.0, torch.tensor(1.3)])
def test_any_positive_tau_is_accepted(tau):
    """Figure 2 sweeps ReinMax below 1: every tau > 0 is allowed."""
    y, _ = reinmax.reinmax(LOGITS, tau)
    assert torch.equal(y.sum(-1), torch.ones(3))


# --------------------------------------------------------------------------------- logits
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("row,match", [
    ([0.0, float("nan"), 1.0], r"logits contain NaN"),
    ([0.0, math.inf, 1.0], r"logits contain \+inf"),
    ([-math.inf, -math.inf, -math.inf], r"a row of logits is all -inf"),
])
def test_bad_logit_values(name, row, match):
    logits = torch.tensor([[0.5, 0.0, -1.0], row])
    with pytest.raises(ValueError, match=match):
        call(name, logits)


@pytest.mark.parametrize("name", NAMES)
def test_empty_category_dimension(name):
    with pytest.raises(ValueError, match=r"logits has an empty category dimension \(dim=1, shape \(3, 0\)\)"):
        call(name, torch.zeros(3, 0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.bool])
def test_integer_logits(name, dtype):
    with pytest.raises(TypeError, match=rf"logits must have a floating dtype .*; got {dtype}"):
        call(name, torch.zeros(3, 4, dtype=dtype))


@pytest.mark.parametrize("name", NAMES)
def test_logits_that_are_not_a_tensor(name):
    with pytest.raises(TypeError, match=r"logits must be a torch.Tensor; got list"):
        call(name, [[0.0, 1.0]])


@pytest.mark.parametrize("name", NAMES)
def test_zero_dimensional_logits(name):
    with pytest.raises(ValueError, match=r"logits must have at least one dimension"):
        call(name, torch.tensor(1.0))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim,error,match", [
    (2, ValueError, r"dim=2 is out of range for logits with 2 dimensions"),
    (-3, ValueError, r"dim=-3 is out of range for logits with 2 dimensions"),
    (1.0, TypeError, r"dim must be an integer; got dim=1.0"),
])
def test_bad_dim(name, dim, error, match):
    with pytest.raises(error, match=match):
        call(name, LOGITS, dim=dim)


# --------------------------------------------------------------------------------- sample
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sample,match", [
    ([0, 1, 4], r"sample holds category indices out of range: allowed 0..3, got min 0, max 4"),
    ([0, -1, 2], r"sample holds category indices out of range: allowed 0..3, got min -1, max 2"),
])
def test_sample_out_of_range(name, sample, match):
    with pytest.raises(ValueError, match=match):
        call(name, sample=torch.tensor(sample))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("sample", [torch.tensor([0, 1]), torch.tensor([[0, 1, 2]]), torch.tensor(1)])
def test_sample_of_the_wrong_shape(name, sample):
    match = (r"sample must have the shape of logits without the category dimension, \(3,\); "
             rf"got {re_shape(sample.shape)}")
    with pytest.raises(ValueError, match=match):
        call(name, sample=sample)


def re_shape(shape):
    return "\\" + str(tuple(shape)).replace(")", "\\)")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bool])
def test_sample_that_is_not_integer(name, dtype):
    with pytest.raises(TypeError, match=rf"sample must hold integer category indices; got dtype {dtype}"):
        call(name, sample=torch.tensor([0, 1, 1]).to(dtype))


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_follows_dim(name):
    """With dim=0 the sample has the shape of logits without dim 0."""
    y, _ = call(name, LOGITS, dim=0, sample=torch.tensor([0, 2, 1, 1]))
    assert torch.equal(y.argmax(0), torch.tensor([0, 2, 1, 1]))
    with pytest.raises(ValueError, match=r"allowed 0..2, got min 0, max 3"):
        call(name, LOGITS, dim=0, sample=torch.tensor([0, 3, 1, 1]))


def test_stgs_takes_gumbels_or_sample_not_both():
    with pytest.raises(ValueError, match=r"stgs takes either gumbels= or sample=, not both"):
        reinmax.stgs(LOGITS, gumbels=torch.zeros(3, 4), sample=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"gumbels must have the shape of logits \(3, 4\); got \(3, 3\)"):
        reinmax.stgs(LOGITS, gumbels=torch.zeros(3, 3))


# ---------------------------------------------------------------------------- hard, K, gap
@pytest.mark.parametrize("name", HARD_ONLY)
def test_hard_false_is_an_error_without_a_soft_form(name):
    function = registry.get_spec(name).function.__name__      # the message names the function
    with pytest.raises(ValueError, match=rf"{function} has no soft \(relaxed\) form: hard must be True; got hard=False"):
        call(name, LOGITS, 1.0, False)


@pytest.mark.parametrize("name", WITH_SOFT_FORM)
def test_hard_false_is_accepted_with_a_soft_form(name):
    relaxed, _ = call(name, LOGITS, 1.0, False)
    assert torch.allclose(relaxed.sum(-1), torch.ones(3))


@pytest.mark.parametrize("K,match", [
    (0, r"K must be a positive integer; got K=0"),
    (-3, r"got K=-3"),
    (2.5, r"got K=2.5"),
    (True, r"got K=True"),
    ("10", r"got K='10'"),
])
def test_bad_k(K, match):
    with pytest.raises(ValueError, match=match):
        reinmax.gumbel_rao(LOGITS, K=K)


def test_quadrature_needs_two_categories_and_hard():
    with pytest.raises(ValueError, match=r"K='quadrature' needs two categories and hard=True; got 4 "
                                         r"categories and hard=True"):
        reinmax.gumbel_rao(LOGITS, K="quadrature")
    with pytest.raises(ValueError, match=r"got 2 categories and hard=False"):
        reinmax.gumbel_rao(LOGITS[:, :2], 1.0, False, K="quadrature")


@pytest.mark.parametrize("gap,match", [
    (-1.0, r"gap must be a non-negative finite number or 'p'; got gap=-1.0"),
    (math.inf, r"got gap=inf"),
    (float("nan"), r"got gap=nan"),
    ("q", r"got gap='q'"),
    (None, r"got gap=None"),
])
def test_bad_gap(gap, match):
    with pytest.raises(ValueError, match=match):
        reinmax.gst(LOGITS, gap=gap)


def test_unknown_estimator_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown estimator 'ReinMax2'; valid names: ST, ReinMax, STGS, "
                                         r"GR-MCK, GST-1.0, GST-p, ReinMax-1/n"):
        reinmax.get_estimator("ReinMax2")
    with pytest.raises(ValueError, match=r"unknown estimator 'ST'; valid names: REINFORCE, RLOO"):
        reinmax.get_score_estimator("ST")
    with pytest.raises(TypeError, match=r"estimator name must be a string; got 3"):
        reinmax.get_estimator(3)


# ------------------------------------------------------------------------ set_validate_args
@pytest.mark.parametrize("name", NAMES)
def test_validation_off_skips_the_data_dependent_checks(name, no_validation):
    assert not reinmax.validate_args_enabled()
    call(name, torch.tensor([[0.0, float("nan")]]))                 # no error: checks are off
    # The range check of sample is skipped too (what an estimator then does is undefined).
    check_sample(torch.tensor([0, 1, 9]), LOGITS)
    # The cheap checks (temperature, dtype, shapes) always run.
    with pytest.raises(ValueError, match=r"got tau=0.0"):
        call(name, LOGITS, 0.0)
    with pytest.raises(ValueError, match=r"sample must have the shape"):
        call(name, sample=torch.tensor([0, 1]))


@pytest.mark.parametrize("name", NAMES)
def test_validation_is_on_by_default_and_comes_back_on(name):
    reinmax.set_validate_args(False)
    reinmax.set_validate_args(True)
    with pytest.raises(ValueError, match="logits contain NaN"):
        call(name, torch.tensor([[0.0, float("nan")]]))


# ------------------------------------------------------------------------------ score family
def test_score_estimators_check_their_input():
    f = lambda D: D.sum(-1)
    with pytest.raises(ValueError, match=r"logits contain NaN"):
        reinmax.reinforce(torch.tensor([[0.0, float("nan")]]), f)
    with pytest.raises(TypeError, match=r"logits must have a floating dtype"):
        reinmax.rloo(torch.zeros(2, 3, dtype=torch.long), f)
    with pytest.raises(ValueError, match=r"rloo needs num_samples >= 2 \(one draw has no others\); got 1"):
        reinmax.rloo(LOGITS, f, num_samples=1)
    with pytest.raises(ValueError, match=r"num_samples must be a positive integer; got num_samples=0"):
        reinmax.rloo(LOGITS, f, num_samples=0)
    with pytest.raises(ValueError, match=r"allowed 0..3, got min 0, max 5"):
        reinmax.reinforce(LOGITS, f, sample=torch.tensor([0, 5, 1]))
    with pytest.raises(ValueError, match=r"f must return one value per sample, shape \(3,\) \(the first "
                                         r"batch_dims=1 dimensions of the logits without the category "
                                         r"dimension\); got shape \(3, 4\)"):
        reinmax.reinforce(LOGITS, lambda D: D)


# ------------------------------------------------------------------------------ generator=
def _call_any(name, **kwargs):
    """One call of any registered estimator on tiny input, passing ``kwargs`` on."""
    spec = registry.get_spec(name)
    logits = torch.randn(2, 3)
    if spec.family == "bernoulli-score":
        est = spec.build(**({"num_latents": 3} if "num_latents" in spec.options else {}))
        return est(logits, lambda b: (b ** 2).sum(-1), **kwargs)
    if spec.family == "score":
        return spec.build()(logits, lambda D: D.sum(-1), **kwargs)
    if spec.family == "segment":        # f gets (points, 2, 3) and returns one value per point and row
        return spec.build()(logits, lambda X: (X ** 2).sum(-1), batch_dims=1, **kwargs)
    return spec.build(**({"K": 4} if "K" in spec.options else {}))(logits, **kwargs)


@pytest.mark.parametrize("name", registry.names())
@pytest.mark.parametrize("generator", [5, np.random.default_rng(0), "seed"])
def test_a_generator_of_the_wrong_type_is_a_clear_error(name, generator):
    """Was a TypeError from inside torch.rand ("received an invalid combination of arguments"),
    for every estimator of every family."""
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator or None; got "
                                        rf"generator={re.escape(repr(generator))} of type "):
        _call_any(name, generator=generator)


# ------------------------------------------------------------------------------ gumbels=
@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("shape", [(4,), (3,), (3, 4, 1), (1, 3, 4), (4, 3)])
def test_gumbels_of_the_wrong_shape_is_a_clear_error(shape, dim):
    """(4,) was an IndexError from movedim; (3, 4, 1) was reported as (3, 1, 4)."""
    with pytest.raises(ValueError, match=rf"gumbels must have the shape of logits \(3, 4\); "
                                         rf"got {re.escape(str(shape))}"):
        reinmax.stgs(LOGITS, dim=dim, gumbels=torch.zeros(shape))


def test_gumbels_must_be_a_floating_tensor():
    with pytest.raises(TypeError, match=r"gumbels must be a floating tensor shaped like logits \(3, 4\); "
                                        r"got list"):
        reinmax.stgs(LOGITS, gumbels=[[0.0] * 4] * 3)
    with pytest.raises(TypeError, match=r"got Tensor of dtype torch.int64"):
        reinmax.stgs(LOGITS, gumbels=torch.zeros(3, 4, dtype=torch.long))


# ------------------------------------------------------------------ options checked when built
def _bad_values(rule):
    """Values ``rule`` must refuse, generated from its metadata alone."""
    bad = [True, "x", [1], float("nan")] + ([] if rule.tensors else [torch.tensor(1.0)])
    bad += [] if None in rule.choices else [None]
    if rule.kind == "choice":           # a flag: 1 and 0 are not True and False
        bad += [1, 0, 0.5]
    elif rule.kind == "int":
        bad += [2.5, float(rule.low if rule.low is not None else 1) + 0.5]
    else:
        bad += [float("inf"), -float("inf")]
    if rule.low is not None:
        bad += [rule.low - 1, rule.low - 10] + ([rule.low] if rule.open_low else [])
    if rule.high is not None:
        bad += [rule.high + 1]
    if rule.multiple_of:
        bad += [rule.low + 1 if rule.low is not None else rule.multiple_of + 1]
    return [value for value in bad if not any(value is c for c in rule.choices)]


def _good_values(rule, default):
    good = [default, *rule.choices] + ([torch.tensor(0.5)] if rule.tensors else [])
    good += [bound for bound in (rule.low, rule.high) if bound is not None
             and not (rule.multiple_of and bound % rule.multiple_of)
             and not (rule.open_low and bound == rule.low)]
    if rule.open_low:                   # just above an open lower bound
        good += [rule.low + (1 if rule.kind == "int" else 1e-3)]
    return good


def _builders(spec):
    """Every public way to build ``spec``'s estimator with options."""
    if spec.family == "score":
        return [reinmax.get_score_estimator]
    if spec.family == "bernoulli-score":
        return [build_binary_score_estimator]
    if spec.family == "segment":
        return [registry.get_segment_estimator]
    return [reinmax.get_estimator, lambda name, **o: StraightThrough(name, **o)]


def test_every_registered_option_has_a_rule():
    for spec in registry.specs():
        assert set(spec.rules) == set(spec.options), spec.name


@pytest.mark.parametrize("name", [s.name for s in registry.specs() if s.options])
def test_bad_option_values_are_refused_when_built(name):
    """GR-MCK with K = 0, -5 or 2.5, RODEO with hidden=0 ... were accepted until the first call
    (or never refused). Every bad value generated from an option's rule is now an error at every
    builder, naming the estimator, the option, the value and what is allowed; the default, the
    bounds and the choices are accepted."""
    spec = registry.get_spec(name)
    for build in _builders(spec):
        for option, rule in spec.rules.items():
            for value in _bad_values(rule):
                with pytest.raises((TypeError, ValueError),
                                   match=rf"^{re.escape(spec.name)}: option {option} must be "
                                         rf"{re.escape(rule.allowed())}; got {option}="
                                         rf"{re.escape(repr(value))}$"):
                    build(name, **{option: value})
            for value in _good_values(rule, spec.options[option]):
                build(name, **{option: value})


def test_option_rules_are_checked_against_their_defaults():
    with pytest.raises(ValueError, match=r"Toy: option K must be an integer >= 1; got K=0"):
        registry.EstimatorSpec(name="Toy", family="straight-through", function=reinmax.st,
                               options={"K": 0}, rules={"K": registry.OptionRule("int", low=1)})
    with pytest.raises(ValueError, match=r"rules names 'L', which is not one of its options \(K\)"):
        registry.EstimatorSpec(name="Toy", family="straight-through", function=reinmax.st,
                               options={"K": 1}, rules={"L": registry.OptionRule("int", low=1)})
