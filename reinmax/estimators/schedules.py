"""Temperature schedules: small callables ``schedule(t) -> tau`` of the epoch or step ``t``.

Each is a plain callable of a non-negative integer (an epoch or an optimizer step, counted
from 0), checked on construction and on every call, with a ``repr`` that says what it is::

    tau = reinmax.estimators.schedules.gdas_linear(epochs=100)(epoch)          # 10 -> 0.1, once per epoch
    tau = reinmax.estimators.schedules.exponential(rate=1e-4)(step)             # Jang et al. 2017
    layer = reinmax.estimators.nn.StraightThrough("STGS", tau=reinmax.estimators.schedules.gdas_linear(epochs=100))

:class:`reinmax.estimators.nn.StraightThrough` evaluates a schedule at its own counter, which
``layer.step()`` advances (once per epoch or once per step, as the schedule is meant), as
``torch.optim.lr_scheduler`` does for learning rates.

* :func:`constant`: the same ``tau`` at every ``t`` (ReinMax keeps 1.0 where GDAS anneals);
* :func:`gdas_linear`: GDAS's schedule (Dong and Yang 2019, as NATS-Bench runs it): at the start
  of epoch ``e`` of ``E``, ``tau = tau_max - (tau_max - tau_min) e / (E - 1)``, from 10 at the
  first epoch to 0.1 at the last, constant within an epoch;
* :func:`exponential`: the annealing of Jang et al. (2017),
  ``tau = max(tau_min, tau0 exp(-rate t))`` with ``t`` the global training step, updated every
  ``every`` steps (their N = 500, tau_min = 0.5, rate 1e-5 or 1e-4).
"""
import math
import numbers

__all__ = ["Schedule", "constant", "gdas_linear", "exponential"]


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive finite number; got {name}={value!r}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number; got {name}={value!r}")
    return value


def _count(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {name}={value!r} "
                        f"of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {name}={value!r}")
    return int(value)


class Schedule:
    """Base of the schedules: ``schedule(t)`` checks ``t`` (an integer >= 0) and returns a
    positive float. Subclasses define :meth:`value`; any callable ``t -> tau`` works where a
    schedule is expected, these only add the checks and a readable ``repr``."""

    unit = "step"

    def __call__(self, t) -> float:
        return self.value(_count(self.unit, t, 0))

    def value(self, t: int) -> float:
        """The temperature at ``t`` (already checked to be an integer >= 0)."""
        raise NotImplementedError


class _Constant(Schedule):
    def __init__(self, tau):
        self.tau = _positive("tau", tau)

    def value(self, t: int) -> float:
        return self.tau

    def __repr__(self) -> str:
        return f"constant(tau={self.tau!r})"


class _GDASLinear(Schedule):
    unit = "epoch"

    def __init__(self, epochs, tau_max, tau_min):
        self.epochs = _count("epochs", epochs, 1)
        self.tau_max = _positive("tau_max", tau_max)
        self.tau_min = _positive("tau_min", tau_min)
        if self.tau_min > self.tau_max:
            raise ValueError(f"tau_min must not exceed tau_max; got tau_min={tau_min!r}, "
                             f"tau_max={tau_max!r}")

    def value(self, epoch: int) -> float:
        if self.epochs == 1:     # GDAS's formula divides by E - 1: one epoch runs at tau_max
            return self.tau_max
        epoch = min(epoch, self.epochs - 1)    # after the last epoch: tau_min
        return self.tau_max - (self.tau_max - self.tau_min) * epoch / (self.epochs - 1)

    def __repr__(self) -> str:
        return f"gdas_linear(epochs={self.epochs}, tau_max={self.tau_max!r}, tau_min={self.tau_min!r})"


class _Exponential(Schedule):
    def __init__(self, rate, tau0, tau_min, every):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"rate must be a non-negative finite number; got rate={rate!r}")
        if not math.isfinite(rate) or rate < 0:
            raise ValueError(f"rate must be a non-negative finite number; got rate={rate!r}")
        self.rate = float(rate)
        self.tau0 = _positive("tau0", tau0)
        self.tau_min = _positive("tau_min", tau_min)
        self.every = _count("every", every, 1)

    def value(self, step: int) -> float:
        updated = step - step % self.every     # the step at which tau was last updated
        return max(self.tau_min, self.tau0 * math.exp(-self.rate * updated))

    def __repr__(self) -> str:
        return (f"exponential(rate={self.rate!r}, tau0={self.tau0!r}, tau_min={self.tau_min!r}, "
                f"every={self.every})")


def constant(tau: float = 1.0) -> Schedule:
    """``tau`` at every epoch or step (a positive finite number)."""
    return _Constant(tau)


def gdas_linear(epochs: int, tau_max: float = 10.0, tau_min: float = 0.1) -> Schedule:
    """GDAS's temperature, a function of the epoch ``e`` (0, 1, ..., ``epochs - 1``):
    ``tau_max - (tau_max - tau_min) * e / (epochs - 1)``, so 10 at the first epoch and 0.1 at
    the last, constant within an epoch (NATS-Bench's ``search-cell.py`` sets it at the start of
    each epoch). With ``epochs = 1`` the one epoch runs at ``tau_max``; epochs after the last
    keep ``tau_min``. ``tau_min <= tau_max``, both positive."""
    return _GDASLinear(epochs, tau_max, tau_min)


def exponential(rate: float, tau0: float = 1.0, tau_min: float = 0.5, every: int = 500) -> Schedule:
    """Exponential annealing (Jang et al. 2017), a function of the global step ``t``:
    ``max(tau_min, tau0 * exp(-rate * t'))`` with ``t' = every * floor(t / every)``, the
    temperature updated every ``every`` steps. The defaults are the paper's (tau0 = 1,
    tau_min = 0.5, N = 500); it used ``rate`` 1e-5 and 1e-4. ``rate = 0`` keeps ``tau0``."""
    return _Exponential(rate, tau0, tau_min, every)
