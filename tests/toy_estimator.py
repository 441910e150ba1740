"""A toy straight-through estimator, registered the way a real one is (tests/test_toy_estimator.py).

Scaled-ST: the forward value is ST's one-hot sample, the backward is ST's gradient times
``scale``. Importing this module registers it, as importing reinmax.estimators registers the
paper's estimators; ``benchmarks/estimators.py --register tests/toy_estimator.py`` measures it.
"""
import reinmax
from reinmax.estimators.registry import EstimatorSpec, register

NAME = "Scaled-ST"


def scaled_st(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None, scale=0.5):
    """ST whose backward is multiplied by ``scale``; returns ``(y_hard, y_soft)`` like ST."""
    y_hard, y_soft = reinmax.st(logits, tau, hard, dim=dim, sample=sample, generator=generator)
    return y_hard.detach() + scale * (y_hard - y_hard.detach()), y_soft


SPEC = register(EstimatorSpec(
    name=NAME, family="straight-through", function=scaled_st, options={"scale": 0.5},
    sample_only_backward=True, description="a toy: ST's gradient times scale"))
