"""One registry of gradient estimators, with what the book, the experiments and the tests need to
know about each: the source of every list of estimator names in the project.

An estimator module registers its estimators where it defines them::

    from .registry import EstimatorSpec, register

    register(EstimatorSpec(
        name="GST-1.0", family="straight-through", function=gst, fixed={"gap": 1.0},
        description="Gapped Straight-Through with gap 1 (Fan et al. 2022)",
        sample_only_backward=True, style=dict(color="#9467bd", linestyle=(0, (5, 1)))))

and everything else reads the registry: :func:`get_estimator` and :func:`get_score_estimator`
(by the paper's name, case-insensitively, with options checked against the entry's
:class:`OptionRule` s when the estimator is built), ``reinmax.ESTIMATORS`` and
``reinmax.SCORE_ESTIMATORS`` (read-only name -> callable views), the plot style
(:func:`reinmax.reporting.figures.style`), the experiments' method lists and noise handling, the benchmarks
and the tests. Views read the registry when they are used, so an estimator registered later (a
user's own, or a test's toy) appears in all of them.

Two kinds of entries:

* ``function=``: a plain function (or other stateless callable). ``get_estimator(name)`` returns
  it (bound to the options the name fixes, e.g. GST-1.0's ``gap=1.0``); with options,
  ``functools.partial(function, **fixed, **options)``.
* ``factory=``: a callable that builds the estimator, e.g. a ``torch.nn.Module`` subclass with
  learned parameters (control variates). ``get_estimator(name, **options)`` calls
  ``factory(**fixed, **options)`` on **every** lookup and returns the new object, so two lookups
  never share learned state; keep the object you train. ``ESTIMATORS[name]`` likewise builds a
  fresh one with the default options each time it is read.

Either way the callable has its family's call signature: straight-through
``fn(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None) -> (y_hard, y_soft)``,
score ``fn(logits, f, *, dim=-1, sample=None, generator=None, batch_dims=None) -> (surrogate,
values)``, where f returns one value per sample (see :func:`reinmax.reinforce`), bernoulli (one logit
per binary variable, :mod:`reinmax.estimators.bernoulli`)
``fn(logits, tau=1.0, hard=True, *, sample=None, generator=None) -> (b_hard, sigmoid(logits))``.
"""
import dataclasses
import functools
import math
import numbers
import re
import types
import weakref
from collections.abc import Mapping, Set
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import torch

FAMILIES = ("straight-through", "score", "bernoulli", "bernoulli-score", "segment")
"""Straight-through: one-hot forward, a surrogate backward through a relaxation (needs f's
gradient). Score: REINFORCE and its variance-reduced relatives (need f's values). Bernoulli:
straight-through estimators for one logit per binary variable (0/1 forward), a family of its own
because their call signature has no category dimension. Bernoulli-score: the REINFORCE family for
one logit per binary variable (:mod:`reinmax.estimators.bernoulli_score`), modules called as
``est(logits, f) -> BinaryScoreEstimate``; built with
:func:`reinmax.estimators.bernoulli_score.build_binary_score_estimator`. Segment: quadrature rules
on eq. 6's segment integral (:mod:`reinmax.estimators.quadrature`), called like the score family,
``fn(logits, f, ...) -> (surrogate, values)``, but they need f's gradient, off the one-hot
corners for rules with interior nodes, and are biased (a family of their own, so that the score
family's unbiasedness checks and the straight-through signature do not apply to them)."""

DEFAULT_COLOURS = ("#1a55ff", "#006400", "#8b008b", "#b8860b", "#008b8b", "#dc143c", "#4b0082",
                   "#556b2f", "#ff1493", "#2f4f4f")
"""Colours given, in order, to registered estimators that bring no style of their own: the first
one no registered estimator uses yet, so that a new estimator is told apart from the others."""


def _frozen(name: str, field: str, value) -> Mapping:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise TypeError(f"EstimatorSpec {name!r}: {field} must be a dict with string keys; "
                        f"got {field}={value!r}")
    return types.MappingProxyType(dict(value))


@dataclasses.dataclass(frozen=True)
class OptionRule:
    """What one option of an estimator accepts, checked when the estimator is built
    (:meth:`EstimatorSpec.check_options`), so that a bad value fails at
    ``get_estimator("GR-MCK", K=0)``, not at the first call hours into a run.

    A value is accepted when it is one of ``choices`` (compared by equality: ``"quadrature"``,
    ``None``), a ``torch.Tensor`` where ``tensors`` is True, or a number of ``kind``: ``"int"``
    (an integer; ``True`` is not one) or ``"real"`` (a finite real number, not a bool), within
    ``[low, high]`` (either bound may be None; ``open_low=True`` excludes ``low`` itself, for
    a temperature that must be > 0) and, for integers, a multiple of ``multiple_of``. Kind
    ``"choice"`` accepts the ``choices`` alone (a flag: ``choices=(False, True)``, so that 1 or
    "yes" is refused, not read as True).
    A value of none of these types is a TypeError, a number out of range a ValueError; both
    messages name the estimator, the option, the value and :meth:`allowed`."""
    kind: str = "int"
    low: Optional[float] = None
    high: Optional[float] = None
    multiple_of: Optional[int] = None
    choices: Tuple = ()
    tensors: bool = False
    open_low: bool = False

    def __post_init__(self):
        if self.kind not in ("int", "real", "choice"):
            raise ValueError(f"OptionRule kind must be 'int', 'real' or 'choice'; got kind={self.kind!r}")
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.kind == "choice" and not self.choices:
            raise ValueError("OptionRule kind 'choice' needs the choices it accepts (choices=...)")
        if self.open_low and self.low is None:
            raise ValueError("OptionRule open_low=True needs a lower bound (low=...)")

    def allowed(self) -> str:
        """What the option accepts, in words: "an integer >= 1, or 'quadrature'"."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        number = "an integer" if self.kind == "int" else "a finite number"
        if self.multiple_of:
            number = f"a multiple of {self.multiple_of}"
        if self.low is not None and self.high is not None:
            number += f" in {'(' if self.open_low else '['}{self.low}, {self.high}]"
        elif self.low is not None:
            number += f" {'>' if self.open_low else '>='} {self.low}"
        elif self.high is not None:
            number += f" <= {self.high}"
        others = [repr(c) for c in self.choices] + (["a tensor"] if self.tensors else [])
        return number + "".join(f", or {other}" for other in others)

    def check(self, estimator: str, option: str, value) -> None:
        """Raise a clear error unless ``value`` is allowed (see the class docstring)."""
        if any(_same(value, choice) for choice in self.choices):
            return
        if self.tensors and isinstance(value, torch.Tensor):
            return
        message = f"{estimator}: option {option} must be {self.allowed()}; got {option}={value!r}"
        if self.kind == "choice":
            raise TypeError(message)
        integer = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        real = (isinstance(value, numbers.Real) and not isinstance(value, bool)
                and math.isfinite(float(value)))
        if not (integer if self.kind == "int" else real):
            if self.kind == "real" and isinstance(value, numbers.Real) and not isinstance(value, bool):
                raise ValueError(message)                # nan, inf: a number, but not finite
            raise TypeError(message)
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        if (below or (self.high is not None and value > self.high)
                or (self.multiple_of and value % self.multiple_of)):
            raise ValueError(message)


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """One estimator and what is known about it (validated on construction).

    Fields::

        name         the name the paper prints ("ST", "GR-MCK", "GST-1.0"); looked up
                     case-insensitively, so no two names may differ only in case
        family       "straight-through" or "score" (see FAMILIES)
        function     the estimator (a callable with the family's signature), or
        factory      a callable that builds one (e.g. a torch.nn.Module class): give exactly one
        description  one line: what it is and where it comes from
        options      option name -> default, the keyword arguments a user may set at lookup,
                     by their public names (GR-MCK: {"K": 1000}, RLOO: {"num_samples": 2})
        rules        option name -> OptionRule, what each option accepts (GR-MCK: K an integer
                     >= 1 or "quadrature"): checked when the estimator is built; the registered
                     estimators give one for every option (an option without a rule is passed
                     on unchecked, to be checked by the estimator when it is called)
        fixed        options the name fixes (GST-1.0: {"gap": 1.0}): bound at lookup; passing
                     one with another value is an error
        draws_noise  whether, given the sampled categories (sample=), it still draws random
                     numbers (STGS's and GR-MCK's Gumbel noise); such estimators must be called
                     with a generator per independent stream (see models.vae.relaxed_codes)
        noise_free_with  options with which an estimator that draws noise draws none given the
                     sample (GR-MCK: {"K": "quadrature"}, its K -> inf limit by quadrature);
                     see :meth:`draws_noise_with`
        sample_only_backward  whether its backward pass is a function of the logits, the
                     sample and the upstream gradient (score family: and f at the sample) alone:
                     no noise, no learned state
        exact_sample  whether its forward value is an exact draw from softmax(logits) with
                     its default options (True for all but ReDGE, whose diffusion sampler
                     draws from an approximation unless t_1 = 1); the tests check the claim
        style        matplotlib keyword arguments for its lines (colour, line style); empty:
                     register() gives it an unused colour from DEFAULT_COLOURS
    """
    name: str
    family: str
    function: Optional[Callable] = dataclasses.field(default=None, compare=False)
    factory: Optional[Callable[..., Callable]] = dataclasses.field(default=None, compare=False)
    description: str = ""
    options: Mapping = dataclasses.field(default_factory=dict, hash=False)
    fixed: Mapping = dataclasses.field(default_factory=dict, hash=False)
    rules: Mapping = dataclasses.field(default_factory=dict, hash=False)
    draws_noise: bool = False
    noise_free_with: Mapping = dataclasses.field(default_factory=dict, hash=False)
    sample_only_backward: bool = False
    exact_sample: bool = True
    style: Mapping = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self):
        name = self.name
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"EstimatorSpec name must be a non-empty string without surrounding "
                             f"spaces; got name={name!r}")
        if self.family not in FAMILIES:
            raise ValueError(f"EstimatorSpec {name!r}: family must be one of "
                             f"{', '.join(map(repr, FAMILIES))}; got family={self.family!r}")
        if (self.function is None) == (self.factory is None):
            raise ValueError(f"EstimatorSpec {name!r}: give exactly one of function= (the "
                             f"estimator) and factory= (a callable that builds it)")
        given = self.function if self.function is not None else self.factory
        if not callable(given):
            raise TypeError(f"EstimatorSpec {name!r}: "
                            f"{'function' if self.function is not None else 'factory'} must be "
                            f"callable; got {given!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"EstimatorSpec {name!r}: description must be a string; "
                            f"got {self.description!r}")
        for field in ("options", "fixed", "rules", "style", "noise_free_with"):
            object.__setattr__(self, field, _frozen(name, field, getattr(self, field)))
        for option, rule in self.rules.items():
            if option not in self.options:
                raise ValueError(f"EstimatorSpec {name!r}: rules names {option!r}, which is not "
                                 f"one of its options ({', '.join(self.options) or 'none'})")
            if not isinstance(rule, OptionRule):
                raise TypeError(f"EstimatorSpec {name!r}: rules[{option!r}] must be an OptionRule; "
                                f"got {rule!r}")
            rule.check(name, option, self.options[option])     # the default obeys its rule
        both = sorted(set(self.options) & set(self.fixed))
        if both:
            raise ValueError(f"EstimatorSpec {name!r}: {', '.join(both)} cannot be both an "
                             f"option and fixed by the name")
        for field in ("draws_noise", "sample_only_backward", "exact_sample"):
            if not isinstance(getattr(self, field), bool):
                raise TypeError(f"EstimatorSpec {name!r}: {field} must be True or False; "
                                f"got {field}={getattr(self, field)!r}")
        unknown = sorted(set(self.noise_free_with) - set(self.options) - set(self.fixed))
        if unknown:
            raise ValueError(f"EstimatorSpec {name!r}: noise_free_with names {', '.join(unknown)}, "
                             f"which are not its options")
        if self.noise_free_with and not self.draws_noise:
            raise ValueError(f"EstimatorSpec {name!r}: noise_free_with is for an estimator that "
                             f"draws noise (draws_noise=True)")
        if self.draws_noise and self.sample_only_backward:
            raise ValueError(f"EstimatorSpec {name!r}: an estimator that draws noise beyond the "
                             f"sample cannot have a backward that depends only on the sample")
        if self.function is not None:
            # The callable get_estimator(name) returns: the function itself, or a partial
            # binding the fixed options, named after the entry so that it reads well in errors.
            bound = self.function
            if self.fixed:
                bound = functools.partial(self.function, **self.fixed)
                functools.update_wrapper(bound, self.function)
                bound.__name__ = bound.__qualname__ = re.sub(r"\W+", "_", name).lower()  # GST-1.0: gst_1_0
            object.__setattr__(self, "_bound", bound)

    def draws_noise_with(self, options: Mapping) -> bool:
        """Whether, called with ``options`` (the rest at their defaults), it draws noise beyond
        the sample: ``draws_noise`` unless ``options`` hold all of ``noise_free_with``."""
        return self.draws_noise and not (
            self.noise_free_with and all(key in options and _same(options[key], value)
                                         for key, value in self.noise_free_with.items()))

    # ------------------------------------------------------------------ building
    def check_options(self, options: Mapping) -> None:
        """Raise a clear error for an option this estimator does not take, one that
        contradicts what its name fixes, or a value its rule (``rules``) does not allow."""
        for key, value in options.items():
            if key in self.fixed:
                if not _same(value, self.fixed[key]):
                    raise ValueError(f"{self.name} fixes {key}={self.fixed[key]!r} (its name says so); "
                                     f"got {key}={value!r}" + _other_names_hint(self, key, value))
            elif key not in self.options:
                allowed = ", ".join(f"{k} (default {v!r})" for k, v in self.options.items())
                raise TypeError(f"{self.name} has no option {key!r}; its options: "
                                f"{allowed or 'none'}" +
                                (f"; fixed by the name: {dict(self.fixed)}" if self.fixed else ""))
            elif key in self.rules:
                self.rules[key].check(self.name, key, value)

    def build(self, **options) -> Callable:
        """The estimator with ``options`` (checked): see the module docstring for what a
        function entry and a factory entry return."""
        self.check_options(options)
        if self.factory is not None:
            built = self.factory(**dict(self.fixed, **options))
            try:      # remembered, so that spec_of(built) finds this entry
                key = id(built)
                _BUILT[key] = (weakref.ref(built, lambda _, key=key: _BUILT.pop(key, None)), self.name)
            except TypeError:
                pass
            return built
        if not options:
            return self._bound
        return functools.partial(self.function, **dict(self.fixed, **options))


def _same(value, fixed) -> bool:
    """``value == fixed`` for option values, without True passing for 1.0 (bool is an int)."""
    if isinstance(value, bool) != isinstance(fixed, bool):
        return False
    try:
        return bool(value == fixed)
    except (TypeError, ValueError, RuntimeError):   # e.g. a tensor of several elements
        return False


def _other_names_hint(spec: EstimatorSpec, key, value) -> str:
    """Point at the entry whose name fixes ``key=value`` (GST-p for gap='p'), or at the function."""
    for other in _REGISTRY.values():
        if (other.function is spec.function and other.factory is spec.factory
                and key in other.fixed and _same(value, other.fixed[key])):
            return f"; {other.name} is the entry with {key}={value!r}"
    function = spec.function or spec.factory
    return f"; call {getattr(function, '__name__', function)!s}(..., {key}=...) for other values"


# ------------------------------------------------------------------ the registry
_REGISTRY: Dict[str, EstimatorSpec] = {}
_BUILT: Dict[int, Any] = {}
"""id(object) -> (weak reference to it, entry name) for what factory entries built (spec_of)."""
_FILTERS = ("family", "draws_noise", "sample_only_backward", "exact_sample")


def register(spec: EstimatorSpec) -> EstimatorSpec:
    """Add ``spec`` to the registry and return the registered entry (with a default style when
    it brought none). Names are unique, case-insensitively."""
    if not isinstance(spec, EstimatorSpec):
        raise TypeError(f"register takes an EstimatorSpec; got {type(spec).__name__}")
    clash = _find(spec.name)
    if clash is not None:
        raise ValueError(f"an estimator named {clash.name!r} is already registered "
                         f"({clash.description or clash.family}); choose another name, or "
                         f"unregister({clash.name!r}) first")
    if not spec.style:
        used = {str(s.style.get("color", "")).lower() for s in _REGISTRY.values()}
        colour = next((c for c in DEFAULT_COLOURS if c.lower() not in used),
                      DEFAULT_COLOURS[len(_REGISTRY) % len(DEFAULT_COLOURS)])
        spec = dataclasses.replace(spec, style={"color": colour, "linestyle": "-"})
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> EstimatorSpec:
    """Remove an estimator (tests register toys and remove them again); returns its entry."""
    spec = get_spec(name)
    del _REGISTRY[spec.name]
    return spec


def _find(name: str) -> Optional[EstimatorSpec]:
    key = name.strip().lower()
    return next((spec for spec in _REGISTRY.values() if spec.name.lower() == key), None)


def get_spec(name: str, family: Optional[str] = None) -> EstimatorSpec:
    """The entry named ``name`` (case-insensitive, surrounding spaces ignored), of ``family``
    when given; a ValueError listing the valid names otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"estimator name must be a string; got {name!r}")
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(map(repr, FAMILIES))}; got family={family!r}")
    spec = _find(name)
    if spec is None or (family is not None and spec.family != family):
        hint = ""
        if spec is not None:
            lookup = {"score": "get_score_estimator",
                      "bernoulli-score": "binary_score.build_binary_score_estimator",
                      "segment": "estimators.registry.get_segment_estimator"}.get(
                          spec.family, "get_estimator")
            hint = f" ({spec.name} is a {spec.family} estimator: use reinmax.{lookup})"
        raise ValueError(f"unknown estimator {name!r}; valid names: "
                         f"{', '.join(names(family))}{hint}")
    return spec


def names(family: Optional[str] = None, **filters) -> List[str]:
    """Registered names in registration order, of ``family`` when given, and whose fields equal
    ``filters`` (e.g. ``names(draws_noise=True)``)."""
    if family is not None:
        filters["family"] = family
    unknown = sorted(set(filters) - set(_FILTERS))
    if unknown:
        raise ValueError(f"unknown filter {', '.join(map(repr, unknown))}; "
                         f"filters: {', '.join(_FILTERS)}")
    if "family" in filters and filters["family"] not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(map(repr, FAMILIES))}; "
                         f"got family={filters['family']!r}")
    return [spec.name for spec in _REGISTRY.values()
            if all(getattr(spec, key) == value for key, value in filters.items())]


def specs(family: Optional[str] = None, **filters) -> List[EstimatorSpec]:
    """The entries :func:`names` lists, in the same order."""
    return [_REGISTRY[name] for name in names(family, **filters)]


def get_estimator(name: str, **options) -> Callable:
    """A straight-through-family estimator by its paper name, case-insensitively, e.g.
    ``get_estimator("GR-MCK", K=100)``.

    Options are checked here: one the estimator does not take is a TypeError naming the
    estimator, the option and the allowed ones; one that contradicts what the name fixes is a
    ValueError (``get_estimator("GST-1.0", gap=0.3)``; ``gap=1.0`` is accepted); a value the
    option's rule does not allow (``EstimatorSpec.rules``, e.g. ``K=0`` or ``K=2.5`` for GR-MCK)
    is a ValueError, or a TypeError for a value of the wrong type, naming the estimator, the
    option, the value and what is allowed. Without options
    the registered callable itself is returned; a ``factory=`` entry is built anew on each call.
    The names of the family ``"bernoulli"`` ("ReinMax-Bernoulli", ...) are found here too: their
    callables take one logit per binary variable (see :mod:`reinmax.estimators.bernoulli`).
    """
    spec = _find(name) if isinstance(name, str) else None
    family = "bernoulli" if spec is not None and spec.family == "bernoulli" else "straight-through"
    return get_spec(name, family).build(**options)


def get_score_estimator(name: str, **options) -> Callable:
    """A REINFORCE-family estimator by name ("REINFORCE", "RLOO", ...), options checked as in
    :func:`get_estimator`, e.g. ``get_score_estimator("RLOO", num_samples=4)``."""
    return get_spec(name, "score").build(**options)


def get_segment_estimator(name: str, **options) -> Callable:
    """A quadrature-rule estimator on eq. 6's segment integral by name ("Segment-Midpoint", ...;
    :mod:`reinmax.estimators.quadrature`), options checked as in :func:`get_estimator`."""
    return get_spec(name, "segment").build(**options)


def bound_options(estimator: Callable) -> Dict[str, Any]:
    """The keyword arguments ``functools.partial`` layers bind on ``estimator`` (outer ones
    winning, as in a call): what :meth:`EstimatorSpec.draws_noise_with` needs besides the call's
    own options. Empty for anything else."""
    keywords: Dict[str, Any] = {}
    while isinstance(estimator, functools.partial):
        keywords = dict(estimator.keywords, **keywords)
        estimator = estimator.func
    return keywords


def spec_of(estimator: Callable) -> Optional[EstimatorSpec]:
    """The registry entry behind ``estimator``, or None for a callable the registry does not know.

    Recognised: a registered function, the callable :func:`get_estimator` returns (with or
    without options), any ``functools.partial`` of a registered function (nested partials too:
    their keywords pick the entry whose fixed options they match, e.g. ``partial(gst, gap="p")``
    is GST-p), and an object a ``factory=`` entry built (looked up when built, or an instance of
    a factory class). When several entries share the function and the keywords single none out
    (``partial(gst, gap=0.3)``), the most cautious one is returned: one that draws noise if any
    does.
    """
    keywords = bound_options(estimator)
    target = estimator
    while isinstance(target, functools.partial):
        target = target.func
    matches = [spec for spec in _REGISTRY.values()
               if spec.function is not None and (spec.function is target
                                                 or getattr(spec, "_bound", None) is target)]
    if not matches:
        built = _BUILT.get(id(estimator))
        if built is not None and built[0]() is estimator:
            return _REGISTRY.get(built[1])
        matches = [spec for spec in _REGISTRY.values()
                   if isinstance(spec.factory, type) and isinstance(estimator, spec.factory)]
    fixed = [spec for spec in matches
             if spec.fixed and all(_same(keywords.get(k, object()), v) for k, v in spec.fixed.items())]
    matches = fixed or matches
    if not matches:
        return None
    # Several entries share the function and none is singled out (e.g. partial(gst, gap=0.3)):
    # the most cautious one, one that draws noise if any does.
    return max(matches, key=lambda spec: (spec.draws_noise, not spec.sample_only_backward))


# ------------------------------------------------------------------ live views
class EstimatorView(Mapping):
    """Read-only ``name -> callable`` view of one family, in registration order, built from the
    registry each time it is read (so later registrations appear). A factory entry's callable
    is built with its default options on each access."""

    def __init__(self, family: str):
        if family not in FAMILIES:
            raise ValueError(f"family must be one of {', '.join(map(repr, FAMILIES))}; got {family!r}")
        self.family = family

    def __getitem__(self, name: str) -> Callable:
        spec = _REGISTRY.get(name)
        if spec is None or spec.family != self.family:
            raise KeyError(name)
        return spec.build()

    def __iter__(self) -> Iterator[str]:
        return iter(names(self.family))

    def __len__(self) -> int:
        return len(names(self.family))

    def __repr__(self) -> str:
        return f"<{self.family} estimators: {', '.join(self)}>"


class NameSet(Set):
    """Live read-only set of the names :func:`names` lists for ``filters``, e.g.
    ``NameSet(draws_noise=True)``: membership is decided when asked (case-sensitive, as the
    registry spells the names)."""

    def __init__(self, family: Optional[str] = None, **filters):
        names(family, **filters)            # checks the filters now
        self.family, self.filters = family, filters

    def _names(self) -> List[str]:
        return names(self.family, **self.filters)

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def __repr__(self) -> str:
        return f"NameSet({self._names()!r})"


__all__ = ["FAMILIES", "DEFAULT_COLOURS", "OptionRule", "EstimatorSpec", "register", "unregister", "get_spec",
           "names", "specs", "spec_of", "bound_options", "get_estimator", "get_score_estimator",
           "get_segment_estimator", "EstimatorView",
           "NameSet"]
