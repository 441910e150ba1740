r"""Numerical ODE rules (Appendix E) and the gradient approximations they give.

Two uses:

* :func:`integrate` runs forward Euler, Heun or RK4 on an ordinary differential equation
  :math:`y' = F(t, y)` with a fixed step, and :func:`fit_slope` measures the order of accuracy
  from a log-log fit (chapter 5's order plot).
* :func:`segment_rule_target` applies a one-step quadrature rule to every segment
  :math:`I_j \to I_i` of eq. 6, :math:`f(I_i) - f(I_j) = \int_0^1 \nabla f(I_j + t(I_i - I_j))
  \cdot (I_i - I_j)\,dt`. Euler's rule gives Definition 3.1 (ST's expectation), Heun's rule
  Definition 3.2 (ReinMax's), and Simpson's rule (what RK4 reduces to when the right-hand side
  does not depend on y) a fourth-order target that needs gradients at the midpoints
  :math:`(I_i + I_j)/2` as well.
"""
from fractions import Fraction
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from reinmax.estimators.checks import check_positive_int

METHODS = ("euler", "heun", "rk4")

RULES: Dict[str, Tuple[Tuple[Fraction, ...], Tuple[Fraction, ...]]] = {
    "euler": ((Fraction(0),), (Fraction(1),)),
    "heun": ((Fraction(0), Fraction(1)), (Fraction(1, 2), Fraction(1, 2))),
    "simpson": ((Fraction(0), Fraction(1, 2), Fraction(1)),
                (Fraction(1, 6), Fraction(2, 3), Fraction(1, 6))),
}
"""Nodes (fractions of the way from I_j to I_i) and weights of each one-step rule."""


def _check_choice(name: str, value, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {name}={value!r}")
    return value


def integrate(F: Callable, y0, t0: float, t1: float, steps: int, method: str = "heun") -> np.ndarray:
    """Integrate :math:`y' = F(t, y)` from ``t0`` to ``t1`` in ``steps`` equal steps; return y(t1).

    ``method``: ``"euler"`` (forward Euler, order 1), ``"heun"`` (explicit trapezoid, order 2)
    or ``"rk4"`` (classical Runge-Kutta, order 4). ``y0`` may be a number or an array.
    """
    _check_choice("method", method, METHODS)
    steps = check_positive_int("steps", steps)
    if not (np.isfinite(t0) and np.isfinite(t1)) or t1 <= t0:
        raise ValueError(f"need finite t0 < t1; got t0={t0!r}, t1={t1!r}")
    h = (t1 - t0) / steps
    y = np.asarray(y0, dtype=np.float64)
    for step in range(steps):
        t = t0 + step * h
        k1 = F(t, y)
        if method == "euler":
            y = y + h * k1
        elif method == "heun":
            k2 = F(t + h, y + h * k1)
            y = y + h / 2 * (k1 + k2)
        else:
            k2 = F(t + h / 2, y + h / 2 * k1)
            k3 = F(t + h / 2, y + h / 2 * k2)
            k4 = F(t + h, y + h * k3)
            y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def fit_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(x): the order p in y ~ C x^p."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or len(x) < 2:
        raise ValueError(f"x and y must be 1-d of equal length >= 2; got shapes {x.shape} and {y.shape}")
    if (x <= 0).any() or (y <= 0).any() or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be positive and finite to fit a log-log slope")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def gradient_points(n: int, rule: str) -> List[Tuple[Fraction, ...]]:
    """The distinct points where ``rule`` needs the gradient of f, over every segment I_j -> I_i
    (i != j) of one variable with ``n`` categories, as exact coordinates."""
    _check_choice("rule", rule, tuple(RULES))
    n = check_positive_int("n", n)
    nodes, _ = RULES[rule]
    points = set()
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            for a in nodes:
                point = [Fraction(0)] * n
                point[j] += 1 - a
                point[i] += a
                points.add(tuple(point))
    return sorted(points, reverse=True)


def segment_rule_target(f: Callable, logits: torch.Tensor, rule: str = "simpson") -> torch.Tensor:
    r"""The gradient approximation from ``rule`` applied to eq. 6, by enumeration.

    :math:`\sum_i\sum_j \pi_j\,[\sum_q w_q\,\nabla f(I_j + a_q(I_i - I_j))\cdot(I_i - I_j)]\,
    d\pi_i/d\theta`, for one categorical variable (``logits`` of shape ``(n,)``). ``f`` takes a
    batch of points of shape ``(B, n)``, which for Simpson's rule include the midpoints
    :math:`(I_i + I_j)/2`, so ``f`` must be defined (and differentiable) off the one-hot corners.
    ``rule="euler"`` equals :func:`reinmax.theory.exact.first_order_target`, ``"heun"``
    :func:`reinmax.theory.exact.second_order_target`.
    """
    _check_choice("rule", rule, tuple(RULES))
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() != 1:
        raise ValueError("logits must be a 1-d floating-point tensor (one categorical variable); "
                         f"got {logits.shape if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    theta = logits.detach()
    n = theta.shape[0]
    probs = torch.softmax(theta, -1)
    points = gradient_points(n, rule)
    index = {p: row for row, p in enumerate(points)}
    batch = torch.tensor([[float(c) for c in p] for p in points], dtype=theta.dtype,
                         device=theta.device).requires_grad_(True)
    values = f(batch)
    if values.shape != (len(points),):
        raise ValueError(f"f must return one value per point, shape ({len(points)},); got {tuple(values.shape)}")
    (grads,) = torch.autograd.grad(values.sum(), batch)
    nodes, weights = RULES[rule]
    # approx[i, j] ~ f(I_i) - f(I_j) by the rule on the segment from I_j to I_i.
    approx = torch.zeros(n, n, dtype=theta.dtype, device=theta.device)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            for a, w in zip(nodes, weights):
                point = [Fraction(0)] * n
                point[j] += 1 - a
                point[i] += a
                g = grads[index[tuple(point)]]
                approx[i, j] += float(w) * (g[i] - g[j])
    a = approx @ probs                                   # a_i = sum_j pi_j approx[i, j]
    return probs * (a - (probs * a).sum())              # sum_i a_i d pi_i / d theta


def gradient_evaluations(n: int) -> Dict[str, int]:
    """Gradient evaluations each rule needs for one variable with ``n`` categories: the paper's
    count for RK4 (n^2 + n) beside the distinct points counted by :func:`gradient_points`."""
    n = check_positive_int("n", n)
    counts = {rule: len(gradient_points(n, rule)) for rule in RULES}
    counts["rk4 (paper's count, n^2 + n)"] = n * n + n
    return counts
