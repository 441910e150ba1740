r"""Quadrature rules on the segment integral of eq. 6, as single-sample estimators that take f.

Eq. 6 writes every difference the true gradient needs as an integral along a segment:
:math:`f(I_i) - f(I_j) = \int_0^1 \nabla f(I_j + t(I_i - I_j))\cdot(I_i - I_j)\,dt`. A *rule*
replaces the integral by nodes :math:`a_q` and weights :math:`w_q`, and the gradient target is
:math:`\sum_j \pi_j\, J(\pi)^\top A_{\cdot j}` with :math:`A_{ij} = \sum_q w_q \nabla f(I_j + a_q(I_i -
I_j))\cdot(I_i - I_j)`. Forward Euler (node 0) gives ST's expectation, the trapezoid (Heun's
rule, nodes 0 and 1) ReinMax's; a rule exact for polynomials of degree d has order d + 1 (its
relative bias falls as the (d + 1)-th power of how fast f varies along the segment; chapter 5).

The single-sample estimator (one variable; several are handled one at a time, the others held
at their sampled values). With the sample :math:`D = I_j` and the gradient :math:`g = \nabla f(D)`:

* a node at 0 contributes :math:`w\,J(\pi) g` (the ST term: every partner at once);
* a node at 1 contributes :math:`w\,(g_D - \langle\pi, g\rangle)(D - \pi)`: by the symmetry of the
  double sum over (i, j) the gradient at the far end can be traded for the sample's own (this is
  how ReinMax avoids a second evaluation; with weights 1/2, 1/2 the estimate IS ReinMax's at
  tau = 1, sample by sample: 1/2 [J(pi) + (D - pi)(D - pi)^T] g);
* an interior node :math:`0 < a < 1` needs :math:`\nabla f` at :math:`D + a(I_i - D)`, off the one-hot
  corners, for a partner category :math:`i`. Since :math:`J(\pi)^\top A = E_{i\sim\pi}[A_i (I_i - \pi)]`,
  one partner :math:`i \sim \pi` per variable is unbiased for the rule's target:
  contribution :math:`w\,(\nabla f(P)_i - \nabla f(P)_D)(I_i - \pi)`, :math:`P` the moved point.
  Cost: one extra evaluation of f and its gradient per variable per interior node (batched into
  one call of f), and f must be defined and differentiable off the one-hot corners.

``one_pass=True`` moves every variable of a sample toward its partner at once (one extra
evaluation per interior node instead of one per variable). That is exact only for f separable
across the variables of a sample (a sum of one function per variable, as in polynomial
programming); for any other f (a VAE decoder) its expectation is not the rule's target. Our
shortcut, labelled as such: ``reinmax.theory.quadrature`` measures the difference.

The rules (``RULES``): ``euler`` (order 1, = ST), ``trapezoid`` (Heun, order 2, = ReinMax),
``midpoint`` (order 2, one interior node), ``ralston`` (nodes 0 and 2/3, weights 1/4 and 3/4:
exact for quadratics, order 3), ``simpson`` (nodes 0, 1/2, 1; order 4; RK4 for a right-hand side
that does not depend on y). The orders are derived in sympy by
:func:`reinmax.theory.quadrature.rule_order`.

Calling contract (family ``"segment"`` in the registry; the same as the score family's)::

    surrogate, values = segment_rule(logits, f, rule="midpoint", batch_dims=1)
    surrogate.mean().backward()          # logits get the estimate; f's parameters their gradient

``f`` receives points of shape ``(L, *logits.shape)`` (categories at ``dim + 1``): row 0 the
one-hot sample, the others moved points, and returns one value per row and sample, shape
``(L, *logits.shape[:batch_dims])`` (batch_dims as in :func:`reinmax.reinforce`: the leading
dimensions of the logits, categories left out, that are independent samples; the rest are the
variables of one sample). f's gradient at each row must not depend on the other rows (no
batch statistics across rows). Returned: ``surrogate`` (shape ``logits.shape[:batch_dims]``)
with f's values at the sample and, with respect to the logits, the rule's estimate as gradient,
and ``values`` = f at the sample with f's own graph.
"""
from fractions import Fraction
from typing import Callable, Dict, Optional, Tuple

import torch

from .checks import check_generator, check_logits, check_sample, check_softmax_rows
from .registry import EstimatorSpec, OptionRule, register
from .sampling import draw_index, one_hot

Tensor = torch.Tensor

RULES: Dict[str, Tuple[Tuple[Fraction, ...], Tuple[Fraction, ...]]] = {
    "euler": ((Fraction(0),), (Fraction(1),)),
    "trapezoid": ((Fraction(0), Fraction(1)), (Fraction(1, 2), Fraction(1, 2))),
    "midpoint": ((Fraction(1, 2),), (Fraction(1),)),
    "ralston": ((Fraction(0), Fraction(2, 3)), (Fraction(1, 4), Fraction(3, 4))),
    "simpson": ((Fraction(0), Fraction(1, 2), Fraction(1)),
                (Fraction(1, 6), Fraction(2, 3), Fraction(1, 6))),
}
"""Nodes (fractions of the way from the sample I_j to the partner I_i) and weights of each rule."""

__all__ = ["RULES", "segment_rule", "interior_nodes"]


def interior_nodes(rule: str):
    """The rule's nodes strictly inside (0, 1): each costs an evaluation of f off the corners."""
    _check_rule(rule)
    return tuple(a for a in RULES[rule][0] if 0 < a < 1)


def _check_rule(rule) -> str:
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; got rule={rule!r}")
    return rule


def _check_batch_dims(batch_dims, variables: int) -> int:
    if batch_dims is None:
        return variables
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int):
        raise TypeError(f"batch_dims must be an integer (how many leading dimensions of the logits "
                        f"are samples) or None; got batch_dims={batch_dims!r}")
    if not 0 <= batch_dims <= variables:
        raise ValueError(f"batch_dims must be between 0 and {variables} (the logits have "
                         f"{variables} dimensions besides the categories); got batch_dims={batch_dims}")
    return batch_dims


def segment_rule(logits: Tensor, f: Callable, *, rule: str = "midpoint", one_pass: bool = False,
                 dim: int = -1, sample=None, partner=None,
                 generator: Optional[torch.Generator] = None, batch_dims: Optional[int] = None):
    r"""The single-sample estimator of ``rule`` applied to eq. 6 (module docstring).

    ``sample``: the categories (logits' shape without ``dim``), drawn from ``softmax(logits)``
    when not given. ``partner``: the partner categories of the interior nodes (same shape),
    drawn from ``softmax(logits)`` when the rule has an interior node and none is given (so,
    given the sample, the estimate is random for ``midpoint``, ``ralston`` and ``simpson``, and
    a function of the sample for ``euler`` and ``trapezoid``). ``one_pass``: move all variables
    of a sample at once (exact only for separable f; see the module docstring). Temperature 1
    throughout (the ODE view has none).
    """
    _check_rule(rule)
    check_generator(generator)
    if not isinstance(one_pass, bool):
        raise TypeError(f"one_pass must be True or False; got one_pass={one_pass!r}")
    if not callable(f):
        raise TypeError(f"f must be callable (points -> one value per sample); got {type(f).__name__}")
    dim = check_logits(logits, dim)
    theta = logits.movedim(dim, -1)
    b = _check_batch_dims(batch_dims, theta.dim() - 1)
    shape = tuple(theta.shape)
    n = shape[-1]
    outer = shape[:b]
    V = 1
    for size in shape[b:-1]:
        V *= size
    nodes, weights = RULES[rule]
    inner = [(float(a), float(w)) for a, w in zip(nodes, weights) if 0 < a < 1]
    with torch.no_grad():
        probs = torch.softmax(theta, -1)
        check_softmax_rows(probs, theta)
        index = draw_index(probs, theta, sample, generator)
        if inner:
            mate = (draw_index(probs, theta, partner, generator) if partner is not None
                    else draw_index(probs, theta, None, generator))
        elif partner is not None:
            check_sample(partner, theta)
    D = one_hot(index, theta).detach()
    points = [D.unsqueeze(0)]
    if inner:
        step = (one_hot(mate, theta) - D).reshape(outer + (V, n))
        base = D.reshape(outer + (V, n))
        # Per variable (not one_pass): copy k moves only variable k, so the moved points of the
        # V variables are V rows; one_pass moves them all in one row.
        mask = (torch.ones(1, 1, dtype=D.dtype, device=D.device) if one_pass
                else torch.eye(V, dtype=D.dtype, device=D.device))
        mask = mask.reshape((mask.shape[0],) + (1,) * len(outer) + (mask.shape[1], 1))
        for a, _ in inner:
            moved = base.unsqueeze(0) + a * mask * step.unsqueeze(0)
            points.append(moved.reshape((mask.shape[0],) + shape))
    X = torch.cat(points).requires_grad_(True)
    values_all = f(X.movedim(-1, dim + 1))
    expected = (X.shape[0],) + outer
    if not isinstance(values_all, torch.Tensor) or tuple(values_all.shape) != expected:
        got = tuple(values_all.shape) if isinstance(values_all, torch.Tensor) else type(values_all).__name__
        raise ValueError(f"f must return one value per point and sample, shape {expected} (the "
                         f"{X.shape[0]} points, then the first batch_dims={b} dimensions of the "
                         f"logits without the category dimension); got {got}")
    (grads,) = torch.autograd.grad(values_all.sum(), X, retain_graph=True)
    with torch.no_grad():
        g = grads[0]
        g_d = (g * D).sum(-1, keepdim=True)
        pg = (probs * g).sum(-1, keepdim=True)
        estimate = torch.zeros_like(probs)
        for a, w in zip(nodes, weights):
            if a == 0:
                estimate += float(w) * probs * (g - pg)              # w J(pi) g
            elif a == 1:
                estimate += float(w) * (g_d - pg) * (D - probs)      # w (g_D - <pi, g>)(D - pi)
        row = 1
        for a, w in inner:
            count = 1 if one_pass else V
            gq = grads[row:row + count]
            row += count
            if one_pass:
                gq = gq[0]
            else:   # variable k's gradient from the copy that moved variable k
                gq = (gq.reshape((V,) + outer + (V, n)) * mask).sum(0).reshape(shape)
            I_i = one_hot(mate, theta)
            difference = (gq * (I_i - D)).sum(-1, keepdim=True)   # grad f(P) . (I_i - D)
            estimate += w * difference * (I_i - probs)
    values = values_all[0]
    change = ((theta - theta.detach()) * estimate).reshape(outer + (-1,)).sum(-1)
    return values + change, values


# ------------------------------------------------------------------------ the registry
# A family of their own: they take f (its gradient off the one-hot corners), so they cannot have
# the straight-through signature fn(logits, tau, ...) -> (one-hot, softmax); their call is the
# score family's, fn(logits, f, ...) -> (surrogate, values), but they are biased (a rule's
# target is not the true gradient), so the score family's unbiasedness tests do not apply.
_SEGMENT_STYLES = {
    "euler": dict(color="#525252", linestyle=(0, (1, 1))),
    "trapezoid": dict(color="#a50f15", linestyle=(0, (1, 1))),
    "midpoint": dict(color="#fd8d3c", linestyle="-"),
    "ralston": dict(color="#637939", linestyle="-"),
    "simpson": dict(color="#31a354", linestyle="-"),
}
for _rule, _description in (
        ("euler", "forward Euler on eq. 6's segment integral: ST's estimate, through f (order 1)"),
        ("trapezoid", "trapezoid (Heun) on eq. 6's segment integral: ReinMax's estimate at tau = 1 "
                      "(order 2)"),
        ("midpoint", "midpoint rule on eq. 6's segment integral, one partner evaluation per "
                     "variable (order 2)"),
        ("ralston", "Ralston's rule (nodes 0, 2/3) on eq. 6's segment integral, one partner "
                    "evaluation per variable (order 3)"),
        ("simpson", "Simpson's rule (RK4) on eq. 6's segment integral, one partner evaluation "
                    "per variable (order 4)")):
    register(EstimatorSpec(
        name=f"Segment-{_rule.capitalize()}", family="segment", function=segment_rule,
        fixed={"rule": _rule}, options={"one_pass": False},
        rules={"one_pass": OptionRule("choice", choices=(False, True))},
        draws_noise=bool(interior_nodes(_rule)), sample_only_backward=not interior_nodes(_rule),
        description=_description, style=_SEGMENT_STYLES[_rule]))
