r"""The paper's derivations in sympy: what the book's chapters 2-5 display and the tests assert.

Notation (the paper's): one categorical variable with ``n`` categories, logits
:math:`\theta_1..\theta_n`, probabilities :math:`\pi = \mathrm{softmax}(\theta)`, one-hot points
:math:`I_1..I_n`, and :math:`g_j = \partial f(I_j)/\partial I_j`, the gradient of ``f`` at the
one-hot point :math:`I_j`. Nothing is assumed about ``f``: the ``n x n`` numbers
:math:`g_{j,i}` (the ``i``-th component of :math:`g_j`) are free symbols, so an identity that
simplifies to zero holds for every differentiable ``f``.

Vectors over categories are sympy column matrices; gradients with respect to :math:`\theta` are
row matrices (component ``k`` = derivative with respect to :math:`\theta_k`), as the paper writes
:math:`\frac{\partial f}{\partial D}\,\frac{d\pi}{d\theta}`. Expectations over
:math:`D \sim \pi` are written out as :math:`\sum_d \pi_d\,h(I_d)`.

Each ``*_steps`` function returns the chain of expressions of one appendix, as a list of
:class:`Step` (a label, the paper's equation and the sympy expression), so that a chapter can show
every line and :func:`check_chain` can prove that consecutive lines are equal.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import sympy as sp

Matrix = sp.Matrix

__all__ = [
    "Step", "SoftmaxModel", "softmax_model", "simplify", "is_zero", "check_chain",
    "first_order", "second_order", "expected_st", "expected_reinmax", "reinmax_single",
    "theorem_3_1_steps", "theorem_3_2_steps", "softmax_jacobian_steps",
    "remark_4_1_steps", "remark_4_2_steps", "baseline_gradient_identity",
    "uniform_baseline_heun_target", "expected_uniform_baseline", "expected_uniform_baseline_authors",
    "taylor_local_errors", "leading_order", "global_error_series", "derivatives_at",
    "max_checked_n",
]

max_checked_n = 6
"""The largest n for which the book and the tests run the symbolic proofs (n = 2..6)."""


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 12:
        raise ValueError(f"n (the number of categories) must be an integer in 2..12; got n={n!r}")
    return n


# ------------------------------------------------------------------ the symbolic model
@dataclass
class SoftmaxModel:
    r"""Symbols for one categorical variable with ``n`` categories.

    ``theta``: the logits; ``x``: positive symbols :math:`\pi_1..\pi_n` (used by
    :func:`simplify`, which writes results in the probabilities); ``pi``: softmax(theta) as expressions in theta; ``dpi``: the matrix
    :math:`d\pi_i/d\theta_k` computed by sympy's differentiation (row i, column k); ``G``: the
    gradient symbols, ``G[j, i]`` = :math:`g_{j,i}`; ``I``: the one-hot columns.
    """
    n: int
    theta: Tuple[sp.Symbol, ...]
    x: Tuple[sp.Symbol, ...]
    pi: Matrix
    dpi: Matrix
    G: Matrix

    def I(self, i: int) -> Matrix:
        """The one-hot column :math:`I_i` (0-based ``i``)."""
        return sp.eye(self.n)[:, i]

    def g(self, j: int) -> Matrix:
        r"""The gradient row :math:`g_j = \partial f(I_j)/\partial I_j` (0-based ``j``)."""
        return self.G[j, :]

    def expect(self, h: Callable[[int], sp.Expr]):
        r""":math:`E_{D\sim\pi}[h(D)] = \sum_d \pi_d\, h(I_d)`, ``h`` taking the 0-based index d."""
        total = self.pi[0] * h(0)
        for d in range(1, self.n):
            total = total + self.pi[d] * h(d)
        return total


def softmax_model(n: int) -> SoftmaxModel:
    """The symbols of :class:`SoftmaxModel` for ``n`` categories (2 <= n <= 12)."""
    n = _check_n(n)
    theta = sp.symbols(f"theta_1:{n + 1}", real=True)
    x = sp.symbols(f"pi_1:{n + 1}", positive=True)
    total = sum(sp.exp(t) for t in theta)
    pi = Matrix([sp.exp(t) / total for t in theta])
    dpi = pi.jacobian(Matrix(theta))                       # d pi_i / d theta_k, by sympy
    G = Matrix(n, n, lambda j, i: sp.Symbol(f"g_{{{j + 1},{i + 1}}}", real=True))
    return SoftmaxModel(n, theta, x, pi, dpi, G)


def _to_simplex(model: SoftmaxModel) -> dict:
    free = model.x[:-1]
    subs = {sp.exp(t): xi for t, xi in zip(model.theta[:-1], free)}
    subs[sp.exp(model.theta[-1])] = 1 - sum(free)
    return subs


def simplify(expr, model: SoftmaxModel):
    """``expr`` written in the probabilities pi_1..pi_{n-1}, in sympy's canonical rational form.

    Every quantity here is built from softmax(theta) and its derivatives, so it is unchanged by
    theta -> theta + c: a function of e^theta that is homogeneous of degree 0. It is therefore
    zero everywhere if and only if it is zero where sum_i e^theta_i = 1, i.e. after
    e^theta_i -> pi_i (i < n) and e^theta_n -> 1 - pi_1 - ... - pi_{n-1}. What remains is a
    rational function of the free symbols pi_1..pi_{n-1} (and the g's); ``sympy.cancel`` brings
    it to a canonical form, which is 0 exactly when the expression is zero.
    """
    subs = _to_simplex(model)
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: sp.cancel(sp.sympify(e).subs(subs)))
    return sp.cancel(sp.sympify(expr).subs(subs))


def _entry_is_zero(expr, subs) -> bool:
    e = sp.sympify(expr).subs(subs)
    if sp.expand(e) == 0:          # fast path: terms cancel once expanded
        return True
    # Otherwise over a common denominator: zero iff the expanded numerator is zero.
    return sp.expand(sp.numer(sp.together(e))) == 0


def is_zero(expr, model: SoftmaxModel) -> bool:
    """True when ``expr`` (a scalar or a matrix) is identically zero (same reduction as
    :func:`simplify`, decided by expanding numerators, which is faster than ``cancel``)."""
    subs = _to_simplex(model)
    entries = list(expr) if isinstance(expr, sp.MatrixBase) else [expr]
    return all(_entry_is_zero(e, subs) for e in entries)


# ------------------------------------------------------------------ the quantities
def _segment_vector(model: SoftmaxModel, i: int, j: int, rule: str):
    r"""Approximation of :math:`f(I_i) - f(I_j)` from gradients at the one-hot ends."""
    step = model.I(i) - model.I(j)
    if rule == "euler":                                     # forward Euler from I_j
        return (model.g(j) * step)[0]
    if rule == "heun":                                      # Heun / trapezoid
        return ((model.g(i) + model.g(j)) * step)[0] / 2
    raise ValueError(f"rule must be 'euler' or 'heun'; got rule={rule!r}")


def _double_sum(model: SoftmaxModel, rule: str, weight: Optional[Matrix] = None) -> Matrix:
    r""":math:`\sum_i\sum_j w_j\,[\text{rule}_{ij}]\, d\pi_i/d\theta` with ``w = pi`` by default."""
    w = model.pi if weight is None else weight
    n = model.n
    return sum((w[j] * _segment_vector(model, i, j, rule) * model.dpi[i, :]
                for i in range(n) for j in range(n)), sp.zeros(1, n))


def first_order(model: SoftmaxModel, baseline: Optional[Matrix] = None) -> Matrix:
    r"""Definition 3.1, :math:`\sum_i\sum_j \pi_j g_j (I_i - I_j)\, d\pi_i/d\theta`; with
    ``baseline=phi`` Remark 4.1's first-order approximation (``phi_j`` in place of ``pi_j``)."""
    return _double_sum(model, "euler", baseline)


def second_order(model: SoftmaxModel, baseline: Optional[Matrix] = None) -> Matrix:
    r"""Definition 3.2, :math:`\sum_i\sum_j \frac{\pi_j}{2}(g_j + g_i)(I_i - I_j)\, d\pi_i/d\theta`
    (``baseline=phi``: Heun's rule with the baseline :math:`\sum_j \phi_j f(I_j)`)."""
    return _double_sum(model, "heun", baseline)


def _jacobian_at(p: Matrix) -> Matrix:
    r"""The softmax Jacobian written at a point p: :math:`\mathrm{diag}(p) - p p^T` (eq. 7)."""
    return sp.diag(*p) - p * p.T


def st_single(model: SoftmaxModel, d: int) -> Matrix:
    r"""The ST estimate (eq. 4) for the sample :math:`D = I_d`: :math:`g_d\, d\pi/d\theta`."""
    return model.g(d) * model.dpi


def reinmax_single(model: SoftmaxModel, d: int, coefficients=(2, sp.Rational(1, 2))) -> Matrix:
    r"""ReinMax (eq. 7) for the sample :math:`D = I_d` at temperature 1:
    :math:`2\, g_d J(\tfrac{\pi + D}{2}) - \tfrac12\, g_d\, d\pi/d\theta` with
    :math:`J(p) = \mathrm{diag}(p) - p p^T`.

    ``coefficients=(a, b)`` gives :math:`a\,\nabla_{(\pi+D)/2} - b\,\nabla_{ST}`; anything but
    (2, 1/2) is a deliberately wrong variant that the proofs must reject.
    """
    a, b = (sp.nsimplify(c) for c in coefficients)
    midpoint = (model.pi + model.I(d)) / 2
    return a * model.g(d) * _jacobian_at(midpoint) - b * st_single(model, d)


def expected_st(model: SoftmaxModel) -> Matrix:
    r""":math:`E[\widehat\nabla_{ST}] = \sum_d \pi_d\, g_d\, d\pi/d\theta`."""
    return model.expect(lambda d: st_single(model, d))


def expected_reinmax(model: SoftmaxModel, coefficients=(2, sp.Rational(1, 2))) -> Matrix:
    r""":math:`E[\widehat\nabla_{ReinMax}]` over :math:`D \sim \pi` (``coefficients`` as in
    :func:`reinmax_single`)."""
    return model.expect(lambda d: reinmax_single(model, d, coefficients))


# ------------------------------------------------------------------ proofs as chains
@dataclass
class Step:
    """One line of a derivation: ``label`` (what justifies it), ``latex`` (the paper's form) and
    ``expr`` (the sympy expression: a row over theta_k, or a scalar for one component)."""
    label: str
    latex: str
    expr: object


def check_chain(steps: Sequence[Step], model: SoftmaxModel) -> List[bool]:
    """For each line after the first: is it identically equal to the line before?"""
    return [is_zero(b.expr - a.expr, model) for a, b in zip(steps, steps[1:])]


def softmax_jacobian_steps(model: SoftmaxModel) -> List[Step]:
    r"""The softmax derivative that every proof uses: sympy's :math:`d\pi_i/d\theta_k` equals
    :math:`\pi_i(\delta_{ik} - \pi_k)`, i.e. :math:`\mathrm{diag}(\pi) - \pi\pi^T`."""
    return [Step("sympy's derivative of softmax(theta)", r"\frac{d\pi_i}{d\theta_k}", model.dpi),
            Step("closed form", r"\pi_i(\delta_{ik} - \pi_k)", _jacobian_at(model.pi))]


def theorem_3_1_steps(model: SoftmaxModel) -> List[Step]:
    r"""Appendix A, eq. 9, line by line: Definition 3.1 equals :math:`E[\widehat\nabla_{ST}]`.

    The two facts it uses are separate checks: :math:`\sum_i d\pi_i/d\theta = 0` (``sum_dpi``
    in :func:`theorem_3_1_facts`) and :math:`\sum_i I_i\, d\pi_i/d\theta = d\pi/d\theta`.
    """
    n, pi = model.n, model.pi
    sum_i_I_dpi = sum((model.I(i) * model.dpi[i, :] for i in range(n)), sp.zeros(n, n))
    sum_dpi = sum((model.dpi[i, :] for i in range(n)), sp.zeros(1, n))
    term_a = sum((pi[j] * model.g(j) * sum_i_I_dpi for j in range(n)), sp.zeros(1, n))
    term_b = sum((pi[j] * (model.g(j) * model.I(j))[0] * sum_dpi for j in range(n)), sp.zeros(1, n))
    return [
        Step("Definition 3.1", r"\sum_i \sum_j \pi_j g_j (I_i - I_j) \frac{d\pi_i}{d\theta}",
             first_order(model)),
        Step("split I_i - I_j (eq. 9, second line)",
             r"\sum_j \pi_j g_j \sum_i I_i \frac{d\pi_i}{d\theta}"
             r" - \sum_j \pi_j g_j I_j \sum_i \frac{d\pi_i}{d\theta}", term_a - term_b),
        Step("sum_i dpi_i/dtheta = 0", r"\sum_j \pi_j g_j \sum_i I_i \frac{d\pi_i}{d\theta}", term_a),
        Step("sum_i I_i dpi_i/dtheta = dpi/dtheta, i.e. E[ST]",
             r"E\left[\frac{\partial f(D)}{\partial D} \frac{d\pi}{d\theta}\right]", expected_st(model)),
    ]


def theorem_3_1_facts(model: SoftmaxModel) -> Dict[str, object]:
    """The two facts Appendix A uses, as expressions that must simplify to zero."""
    n = model.n
    sum_dpi = sum((model.dpi[i, :] for i in range(n)), sp.zeros(1, n))
    sum_i_I_dpi = sum((model.I(i) * model.dpi[i, :] for i in range(n)), sp.zeros(n, n))
    return {"sum_i dpi_i/dtheta": sum_dpi,
            "sum_i I_i dpi_i/dtheta - dpi/dtheta": sum_i_I_dpi - model.dpi}


def theorem_3_2_steps(model: SoftmaxModel, k: int = 0,
                      coefficients=(2, sp.Rational(1, 2))) -> List[Step]:
    r"""Appendix B for component ``k`` (0-based): eq. 10 from Definition 3.2 down to an
    expectation, then eq. 11 backwards from :math:`E[\widehat\nabla_{ReinMax,k}]`.

    The chain is: Def. 3.2 -> softmax derivative -> the -pi_k part cancels -> split ->
    expectation form -> combined (end of eq. 10) = simplified ReinMax expectation (end of eq. 11)
    -> ReinMax's definition (eq. 7). ``coefficients`` other than (2, 1/2) give a wrong ReinMax
    whose last link must fail.
    """
    n, pi, I, g = model.n, model.pi, model.I, model.g
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n:
        raise ValueError(f"k must be a category index in 0..{n - 1}; got k={k!r}")
    delta = lambda a, b: 1 if a == b else 0  # noqa: E731
    heun = lambda i, j: ((g(i) + g(j)) * (I(i) - I(j)))[0] / 2  # noqa: E731
    mean_I = sum((pi[j] * I(j) for j in range(n)), sp.zeros(n, 1))
    line1 = second_order(model)[k]
    line2 = sum(pi[j] * pi[i] * (delta(i, k) - pi[k]) * heun(i, j) for i in range(n) for j in range(n))
    line3 = sum(pi[j] * pi[k] * heun(k, j) for j in range(n))
    line4 = (pi[k] / 2 * (g(k) * (I(k) - mean_I))[0]
             + sum(pi[j] * pi[k] / 2 * (g(j) * (I(k) - I(j)))[0] for j in range(n)))
    line5 = (model.expect(lambda d: delta(d, k) * (g(d) * (I(d) - mean_I))[0]) / 2
             + model.expect(lambda d: pi[k] * (g(d) * (I(k) - I(d)))[0]) / 2)
    line6 = model.expect(lambda d: (g(d) * (pi[k] * (I(k) - I(d)) + delta(d, k) * (I(d) - mean_I)))[0]) / 2
    line7 = model.expect(lambda d: (g(d) * (pi[k] * (I(k) - I(d)) + delta(d, k) * (I(k) - mean_I)))[0]) / 2
    line8 = expected_reinmax(model, coefficients)[k]
    return [
        Step("Definition 3.2, component k",
             r"\sum_i\sum_j \frac{\pi_j}{2}(g_j + g_i)(I_i - I_j)\frac{d\pi_i}{d\theta_k}", line1),
        Step("softmax derivative d pi_i/d theta_k = pi_i (delta_ik - pi_k)",
             r"\sum_i\sum_j \frac{\pi_j\pi_i(\delta_{ik} - \pi_k)}{2}(g_j + g_i)(I_i - I_j)", line2),
        Step("the -pi_k part is antisymmetric in (i, j) and cancels",
             r"\sum_j \frac{\pi_j\pi_k}{2}(g_j + g_k)(I_k - I_j)", line3),
        Step("split g_j + g_k",
             r"\frac{\pi_k}{2} g_k (I_k - \sum_j \pi_j I_j) + \sum_j \frac{\pi_j\pi_k}{2} g_j (I_k - I_j)",
             line4),
        Step("as expectations over D ~ pi",
             r"\frac12 E[\delta_{D=I_k} g_D (I_D - \sum_j\pi_j I_j)] + \frac12 E[\pi_k g_D (I_k - I_D)]",
             line5),
        Step("combined (end of eq. 10)",
             r"\frac12 E[g_D(\pi_k(I_k - I_D) + \delta_{D=I_k}(I_D - \sum_i \pi_i I_i))]", line6),
        Step("delta_{D=I_k} I_D = delta_{D=I_k} I_k (end of eq. 11)",
             r"\frac12 E[g_D(\pi_k(I_k - I_D) + \delta_{D=I_k}(I_k - \sum_i \pi_i I_i))]", line7),
        Step("ReinMax's definition, eq. 7 (start of eq. 11)",
             r"E\left[2 g_D J\left(\tfrac{\pi + D}{2}\right) - \tfrac12 g_D \frac{d\pi}{d\theta}\right]_k",
             line8),
    ]


def remark_4_1_steps(model: SoftmaxModel, phi: Optional[Matrix] = None) -> List[Step]:
    r"""Appendix C: with the baseline :math:`\sum_j\phi_j f(I_j)` and forward Euler,
    :math:`\widehat\nabla_{1st-order-avg-baseline} = E[\frac{\phi_D}{\pi_D}\widehat\nabla_{ST}]`.

    ``phi`` defaults to symbols :math:`\phi_1..\phi_{n-1}` with :math:`\phi_n = 1 - \sum`.
    """
    n = model.n
    phi = baseline_symbols(n) if phi is None else phi
    lines = [
        Step("Remark 4.1's approximation",
             r"\sum_i\sum_j \phi_j g_j (I_i - I_j)\frac{d\pi_i}{d\theta}", first_order(model, phi)),
        Step("sum_i dpi_i/dtheta = 0; sum_i I_i dpi_i/dtheta = dpi/dtheta",
             r"\sum_j \frac{\phi_j}{\pi_j}\,\pi_j\, g_j \frac{d\pi}{d\theta}",
             sum((phi[j] / model.pi[j] * model.pi[j] * model.g(j) * model.dpi for j in range(n)),
                 sp.zeros(1, n))),
        Step("as an expectation", r"E\left[\frac{\phi_D}{\pi_D}\widehat\nabla_{ST}\right]",
             model.expect(lambda d: phi[d] / model.pi[d] * st_single(model, d))),
    ]
    return lines


def baseline_symbols(n: int) -> Matrix:
    r"""A symbolic distribution :math:`\phi_1..\phi_n` with :math:`\phi_n = 1 - \sum_{j<n}\phi_j`."""
    n = _check_n(n)
    free = sp.symbols(f"phi_1:{n}", real=True)
    return Matrix(list(free) + [1 - sum(free)])


def baseline_gradient_identity(model: SoftmaxModel, phi: Optional[Matrix] = None) -> Matrix:
    r"""Any baseline leaves the true gradient unchanged:
    :math:`\sum_i\sum_j\phi_j (f_i - f_j) d\pi_i/d\theta - \sum_i f_i\, d\pi_i/d\theta` (must be 0),
    with free symbols :math:`f_i = f(I_i)`."""
    n = model.n
    phi = baseline_symbols(n) if phi is None else phi
    f = sp.symbols(f"f_1:{n + 1}", real=True)
    with_baseline = sum((phi[j] * (f[i] - f[j]) * model.dpi[i, :] for i in range(n) for j in range(n)),
                        sp.zeros(1, n))
    plain = sum((f[i] * model.dpi[i, :] for i in range(n)), sp.zeros(1, n))
    return with_baseline - plain


def remark_4_2_steps(model: SoftmaxModel, coefficients=(2, sp.Rational(1, 2))) -> List[Step]:
    r"""Appendix D: Heun's rule on eq. 8 (no baseline) gives :math:`E[\widehat\nabla_{ReinMax}]`.

    Rows over k: :math:`\widehat\nabla_{2nd-wo-baseline,k} = \pi_k \sum_i \pi_i \frac12
    (g_i + g_k)(I_k - I_i)`.
    """
    n, pi, I, g = model.n, model.pi, model.I, model.g
    delta = lambda a, b: 1 if a == b else 0  # noqa: E731
    mean_I = sum((pi[j] * I(j) for j in range(n)), sp.zeros(n, 1))
    row = lambda fn: Matrix([[fn(k) for k in range(n)]])  # noqa: E731
    line1 = row(lambda k: pi[k] * sum(pi[i] * ((g(i) + g(k)) * (I(k) - I(i)))[0] / 2 for i in range(n)))
    line2 = row(lambda k: pi[k] * sum(pi[i] * (g(i) * (I(k) - I(i)))[0] / 2 for i in range(n))
                + pi[k] * sum(pi[i] * (g(k) * (I(k) - I(i)))[0] / 2 for i in range(n)))
    line3 = row(lambda k: model.expect(
        lambda d: (g(d) * (pi[k] * (I(k) - I(d)) + delta(d, k) * (I(k) - mean_I)))[0] / 2))
    return [
        Step("Remark 4.2's approximation of eq. 8",
             r"\pi_k\sum_i \pi_i \tfrac12 (g_i + g_k)(I_k - I_i)", line1),
        Step("split g_i + g_k",
             r"\pi_k\sum_i \pi_i \tfrac12 g_i (I_k - I_i) + \pi_k\sum_i \pi_i \tfrac12 g_k (I_k - I_i)",
             line2),
        Step("as an expectation",
             r"E\left[g_D \frac{\pi_k(I_k - I_D) + \delta_{D=I_k}(I_k - \sum_i \pi_i I_i)}{2}\right]", line3),
        Step("= E[ReinMax] (eq. 7)", r"E[\widehat\nabla_{ReinMax}]", expected_reinmax(model, coefficients)),
    ]


# ------------------------------------------------------------------ the 1/n baseline (Section 6.6)
def uniform_baseline_heun_target(model: SoftmaxModel) -> Matrix:
    r"""Heun's rule with the uniform baseline :math:`\phi_j = 1/n` (Remark 4.1 with Def. 3.2's
    rule): :math:`\sum_i\sum_j \frac1n \tfrac12 (g_i + g_j)(I_i - I_j)\, d\pi_i/d\theta`."""
    return second_order(model, Matrix([sp.Rational(1, model.n)] * model.n))


def _uniform_single(model: SoftmaxModel, d: int, authors: bool) -> Matrix:
    """One sample of the 1/n-baseline ReinMax at tau = 1 (the book's chapter 4, and its appendix,
    book/appendix/mnist_vae.md, 'Figure 6: the 1/n baseline')."""
    n, pi, g = model.n, model.pi, model.g(d)
    mean_g = sum(g) / n
    score_half = (g[d] - mean_g) * (model.I(d) - pi).T / 2         # d log pi_d / d theta = D - pi
    if authors:   # pi_d g[d] D - (pi . g) pi in place of the ST gradient
        st_half = pi[d] * g[d] * model.I(d).T - (g * pi)[0] * pi.T
    else:
        st_half = st_single(model, d)
    return score_half + st_half / (2 * n * pi[d])


def expected_uniform_baseline(model: SoftmaxModel) -> Matrix:
    """E[reinmax_uniform_baseline] at tau = 1: the estimator derived in the book's chapter 4."""
    return model.expect(lambda d: _uniform_single(model, d, authors=False))


def expected_uniform_baseline_authors(model: SoftmaxModel) -> Matrix:
    """E[reinmax_uniform_baseline_authors] at tau = 1 (the authors' script, without its 1e-12)."""
    return model.expect(lambda d: _uniform_single(model, d, authors=True))


# ------------------------------------------------------------------ Appendix E: Euler and Heun
def _taylor(order: int):
    """g(t0 + h) and g'(t0 + h) as Taylor polynomials with symbolic derivatives c_m = g^(m)(t0)."""
    h = sp.Symbol("h", positive=True)
    c = sp.symbols(f"c_0:{order + 2}", real=True)
    g = lambda s: sum(c[m] * s ** m / sp.factorial(m) for m in range(order + 1))  # noqa: E731
    dg = lambda s: sum(c[m + 1] * s ** m / sp.factorial(m) for m in range(order))  # noqa: E731
    return h, c, g, dg


QUADRATURE_RULES = {
    # nodes (fractions of the step) and weights for approximating g(t0 + h) - g(t0) from g'.
    "euler": ((0,), (1,)),
    "heun": ((0, 1), (sp.Rational(1, 2), sp.Rational(1, 2))),
    "simpson": ((0, sp.Rational(1, 2), 1), (sp.Rational(1, 6), sp.Rational(2, 3), sp.Rational(1, 6))),
}
"""One-step rules for g(t0+h) - g(t0) = integral of g': Euler (left point), Heun (trapezoid) and
Simpson's rule (what RK4 reduces to when the right-hand side does not depend on y)."""


def taylor_local_errors(order: int = 7) -> Dict[str, sp.Expr]:
    r"""Local truncation error of each rule in :data:`QUADRATURE_RULES`:
    :math:`g(t_0+h) - g(t_0) - h\sum_q w_q g'(t_0 + a_q h)`, expanded with symbolic derivatives
    ``c_m`` = :math:`g^{(m)}(t_0)`; exact up to (and including) :math:`h^{order}`."""
    if isinstance(order, bool) or not isinstance(order, int) or not 3 <= order <= 12:
        raise ValueError(f"order must be an integer in 3..12; got order={order!r}")
    h, c, g, dg = _taylor(order)
    exact = g(h) - g(0)
    errors = {}
    for name, (nodes, weights) in QUADRATURE_RULES.items():
        rule = h * sum(w * dg(a * h) for a, w in zip(nodes, weights))
        # Drop powers above `order`: the truncated Taylor polynomials are not exact there.
        err = sp.expand(exact - rule)
        errors[name] = sum(err.coeff(h, p) * h ** p for p in range(order + 1))
    return errors


def leading_order(expr: sp.Expr, variable: Optional[sp.Symbol] = None) -> Tuple[int, sp.Expr]:
    """(p, coefficient) of the lowest power of ``variable`` (default: h) with a nonzero coefficient."""
    variable = variable or sp.Symbol("h", positive=True)
    poly = sp.Poly(sp.expand(expr), variable)
    for (power,), coefficient in sorted(poly.terms()):
        if sp.simplify(coefficient) != 0:
            return power, coefficient
    raise ValueError("expr is zero: it has no leading order")


AMPLIFICATION = {
    "euler": lambda z: 1 + z,
    "heun": lambda z: 1 + z + z ** 2 / 2,
    "rk4": lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24,
}
"""One step of each method on the test equation y' = lambda y multiplies y by R(h lambda)."""


def global_error_series(method: str, terms: int = 3) -> sp.Expr:
    r"""Global error at time T of ``method`` on :math:`y' = \lambda y`, :math:`y(0) = 1`, after
    :math:`T/h` steps: the series in h of :math:`R(h\lambda)^{T/h} - e^{\lambda T}`."""
    if method not in AMPLIFICATION:
        raise ValueError(f"method must be one of {sorted(AMPLIFICATION)}; got method={method!r}")
    h, lam, T = sp.symbols("h lambda T", positive=True)
    R = AMPLIFICATION[method](h * lam)
    return sp.series(sp.exp(T / h * sp.log(R)) - sp.exp(lam * T), h, 0, terms)


def derivatives_at(expr: sp.Expr, variable: sp.Symbol, point=0, orders: Sequence[int] = (1, 2, 3)):
    """``{m: d^m expr / d variable^m at point}``, exact sympy values (e.g. to check g''(0) != 0)."""
    return {m: sp.simplify(sp.diff(expr, variable, m).subs(variable, point)) for m in orders}
