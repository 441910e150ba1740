"""``torch.nn`` modules for the straight-through estimators.

:class:`StraightThrough` is a layer that holds the estimator (by its registry name, options
checked as :func:`reinmax.get_estimator` checks them) and the temperature (a number or a
schedule from :mod:`reinmax.estimators.schedules`), so that a model declares its discrete layer once::

    self.discrete = reinmax.estimators.nn.StraightThrough("ReinMax", tau=1.3)
    ...
    z, probs = self.discrete(logits)         # (one-hot sample, softmax(logits))

The Bernoulli names ("ReinMax-Bernoulli", ...) work the same way on one logit per binary
variable and return ``(b_hard, sigmoid(logits))`` (see :mod:`reinmax.estimators.bernoulli`).
"""
import numbers
from typing import Callable, Optional, Union

import torch

from . import registry
from .checks import check_logits, check_tau

__all__ = ["StraightThrough"]

EVAL_MODES = ("sample", "argmax")


class StraightThrough(torch.nn.Module):
    """A discrete layer: ``forward(logits) -> (y_hard, y_soft)``, the estimator's pair.

    Arguments:
        estimator: a registered name of the straight-through or the Bernoulli family ("ST",
            "ReinMax", "STGS", "GR-MCK", "GST-1.0", ..., "ReinMax-Bernoulli", ...), any case.
        tau: the temperature, a positive number or a schedule (any callable ``t -> tau``, e.g.
            :func:`reinmax.estimators.schedules.gdas_linear`), evaluated at the layer's counter ``t``
            (0 at construction; :meth:`step` advances it). Settable: ``layer.tau = 0.5`` or
            ``layer.tau = schedule``; reading ``layer.tau`` gives the current value.
        hard: passed to the estimator (``False``: the relaxation, where the estimator has one).
        dim: the category dimension (not used by the Bernoulli family, which has none).
        return_soft: ``False``: ``forward`` returns ``y_hard`` alone.
        eval_mode: what the layer does in ``eval()`` mode. ``"sample"`` (the default): the same
            as in training, a random sample with the estimator's backward. The layer is a
            stochastic layer of the model; an evaluation such as the VAE's ELBO is an expectation
            over samples, so switching to the most likely category would evaluate a different
            model. ``"argmax"``: the most likely category (``logit > 0`` for Bernoulli), one-hot,
            for a deterministic prediction (e.g. GDAS's final architecture); no gradient flows
            through ``y_hard`` then (``y_soft`` keeps its own).
        **options: the estimator's options (``K`` for GR-MCK), checked now.

    ``forward(logits, *, sample=None, generator=None)`` passes ``sample`` and ``generator`` on
    to the estimator. The counter ``t`` is saved in the module's ``state_dict`` (extra state), so
    a resumed run continues its schedule. Under ``torch.compile`` the layer passes its current
    temperature as a 0-d tensor, an input of the graph (the number 1 at tau = 1): a model whose
    schedule changes the temperature at every step compiles once (``fullgraph=True``), not once
    per temperature (twice if the temperature is exactly 1 at some step).
    """

    def __init__(self, estimator: str = "ReinMax", tau: Union[float, Callable] = 1.0, *,
                 hard: bool = True, dim: int = -1, return_soft: bool = True,
                 eval_mode: str = "sample", **options):
        super().__init__()
        self.function = registry.get_estimator(estimator, **options)    # checks name and options
        spec = registry.get_spec(estimator)      # straight-through or bernoulli, as found above
        self.estimator, self.family, self.options = spec.name, spec.family, dict(options)
        for name, value in (("hard", hard), ("return_soft", return_soft)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} must be True or False; got {name}={value!r}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim must be an integer; got dim={dim!r}")
        if eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {', '.join(map(repr, EVAL_MODES))}; "
                             f"got eval_mode={eval_mode!r}")
        self.hard, self.dim, self.return_soft, self.eval_mode = hard, dim, return_soft, eval_mode
        self._t, self._current = 0, torch.zeros((), dtype=torch.float64)
        self.tau = tau

    # ------------------------------------------------------------------ temperature
    # Compiled code reads the temperature from a 0-d tensor that setting tau or t refills in
    # place: an input of the compiled graph, where reading t or a float attribute would make
    # torch.compile guard on its value and compile a new graph whenever it changes (every step,
    # for an annealing schedule, until dynamo's recompile limit sends the layer back to eager).
    # A plain attribute on the CPU in float64, not a buffer: model.half() must not round it.
    # At tau = 1 it passes the number 1 instead, for the estimators' shortcuts (checks.check_tau):
    # compiled code guards on the flag _unit only.
    @property
    def t(self) -> int:
        """The schedule's counter (0 at construction; :meth:`step` advances it)."""
        return self._t

    @t.setter
    def t(self, value) -> None:
        self._t = value
        self._refill()

    def _refill(self) -> None:
        tau = self.tau
        self._current.fill_(tau)
        self._unit = tau == 1.0

    @property
    def tau(self) -> float:
        """The current temperature (the number set, or the schedule evaluated at ``t``)."""
        if self._schedule is None:
            return self._tau
        value = self._schedule(self.t)
        try:
            return check_tau(value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"the temperature schedule {self._schedule!r} gave tau={value!r} "
                             f"at t={self.t}: {error}") from None

    @tau.setter
    def tau(self, value) -> None:
        if callable(value) and not isinstance(value, (numbers.Real, torch.Tensor)):
            self._schedule, self._tau = value, None
            self.tau       # evaluated once now, so that a bad schedule fails here
        else:
            self._schedule, self._tau = None, check_tau(value)
        self._refill()

    @property
    def schedule(self) -> Optional[Callable]:
        """The schedule, or ``None`` for a constant temperature."""
        return self._schedule

    def step(self, t: Optional[int] = None) -> float:
        """Advance the counter by one (or set it to ``t``) and return the new temperature.
        Call it once per epoch or once per optimizer step, as the schedule is meant."""
        if t is None:
            t = self.t + 1
        if isinstance(t, bool) or not isinstance(t, numbers.Integral) or t < 0:
            raise ValueError(f"t must be an integer >= 0; got t={t!r}")
        self.t = int(t)
        return self.tau

    def get_extra_state(self):
        """The counter ``t``, saved in ``state_dict`` so that a resumed run continues its schedule."""
        return {"t": self.t}

    def set_extra_state(self, state) -> None:
        """Restore the counter ``t`` from ``state_dict``."""
        self.t = int(state["t"])

    # ------------------------------------------------------------------ forward
    def forward(self, logits: torch.Tensor, *, sample=None,
                generator: Optional[torch.Generator] = None):
        """``(y_hard, y_soft)`` from the estimator at the current temperature (``y_hard`` alone
        when ``return_soft=False``); in ``eval()`` with ``eval_mode="argmax"``, the most likely
        outcome instead of a sample."""
        # compiled: the temperature as a tensor input (see the property t), not as a constant
        # (nor reading t: self.tau evaluates the schedule)
        if torch.compiler.is_compiling():
            tau = 1.0 if self._unit else self._current
        else:
            tau = self.tau
        if not self.training and self.eval_mode == "argmax":
            y_hard, y_soft = self._mode(logits)
        elif self.family == "bernoulli":
            y_hard, y_soft = self.function(logits, tau, self.hard, sample=sample,
                                           generator=generator)
        else:
            y_hard, y_soft = self.function(logits, tau, self.hard, dim=self.dim,
                                           sample=sample, generator=generator)
        return (y_hard, y_soft) if self.return_soft else y_hard

    def _mode(self, logits: torch.Tensor):
        """The most likely outcome (ties: the first category; b = 0 at logit 0) and the
        probabilities."""
        if self.family == "bernoulli":
            if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
                raise TypeError(f"logits must be a floating torch.Tensor; got {logits!r}")
            return (logits.detach() > 0).to(logits.dtype), torch.sigmoid(logits)
        dim = check_logits(logits, self.dim)
        index = logits.detach().argmax(dim, keepdim=True)
        one_hot = torch.zeros_like(logits, memory_format=torch.contiguous_format).scatter_(dim, index, 1.0)
        return one_hot.detach(), torch.softmax(logits, dim)

    def extra_repr(self) -> str:
        """The estimator, the temperature (and schedule counter) and the settings not at their
        defaults, as ``print(model)`` shows them."""
        tau = f"{self._tau!r}" if self._schedule is None else f"{self._schedule!r}, t={self.t}"
        parts = [f"estimator={self.estimator!r}", f"tau={tau}"]
        parts += [f"{key}={value!r}" for key, value in self.options.items()]
        if not self.hard:
            parts.append("hard=False")
        if self.family != "bernoulli" and self.dim != -1:
            parts.append(f"dim={self.dim}")
        if not self.return_soft:
            parts.append("return_soft=False")
        if self.eval_mode != "sample":
            parts.append(f"eval_mode={self.eval_mode!r}")
        return ", ".join(parts)
