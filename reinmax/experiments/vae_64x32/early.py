"""How much smaller RAdam's early steps are than Adam's: the rectification factor.

RAdam (Liu et al. 2020, as ``torch.optim.RAdam`` implements it) multiplies Adam's step by
``r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))`` once
``rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)`` exceeds 5 (``rho_inf = 2 / (1 - beta2) - 1``),
and takes an unadapted momentum step before that. ``r_t`` grows towards 1 over thousands of
updates, so a comparison made after a few hundred updates sets RAdam runs against Adam runs whose
steps are several times larger at the same learning rate: Table 5's study record is such a
comparison (its straight-through rows use RAdam where Table 8 says so, RLOO and DisARM-Tree Adam).
"""
import math

from reinmax.experiments import layer

_OWNER = "radam_rectification"


def radam_rectification(t: int, beta2: float = 0.999) -> float:
    """RAdam's factor on Adam's step at update ``t`` (from 1); 0.0 while ``rho_t <= 5``, where
    RAdam takes a momentum step without the adaptive denominator instead."""
    t = layer.positive_int(_OWNER, "t", t)
    if isinstance(beta2, bool) or not isinstance(beta2, (int, float)) or not 0 < beta2 < 1:
        layer.fail(_OWNER, "beta2", beta2, "a number in (0, 1)")
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t)
    if rho_t <= 5:
        return 0.0
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf
                     / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


def mean_rectification(steps: int, beta2: float = 0.999) -> float:
    """The mean of ``radam_rectification`` over updates 1..``steps``: RAdam's total movement
    over those updates as a fraction of Adam's at the same learning rate (for steps of equal
    adaptive size)."""
    steps = layer.positive_int(_OWNER, "steps", steps)
    return sum(radam_rectification(t, beta2) for t in range(1, steps + 1)) / steps
