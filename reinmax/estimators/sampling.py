"""Sampling primitives shared by every estimator, the two-category fast paths and the models.

One place for the random numbers, so that the same seed gives the same samples everywhere:

* :func:`working_dtype`: float64 for float64 input, float32 otherwise (half-precision logits
  are sampled in float32, so that a cumulative sum of many categories keeps its precision);
* :func:`uniform`: uniform numbers in (0, 1] (``1 - torch.rand``): excluding 0 keeps a masked
  category, whose probability is 0, from ever being drawn by :func:`inverse_cdf`;
* :func:`inverse_cdf`: category indices from probabilities and uniform numbers (a cumulative
  sum and a binary search per row, several times faster than ``torch.multinomial``);
* :func:`draw_index`: category indices for ``probs``, either the caller's ``sample`` (checked) or
  drawn with :func:`uniform` and :func:`inverse_cdf` from ``generator``;
* :func:`one_hot`: one-hot rows from indices, by a comparison (so that it works under vmap);
* :func:`exponential`: Exp(1) draws as ``-log(1 - U)``, the noise of the Gumbel family;
* :func:`official_sample`: category indices drawn as the official ``reinmax`` package draws them
  (``torch.multinomial``), to reproduce old runs' samples through ``sample=``;
* :func:`inside_transform`, :func:`inside_vmap`: whether the code runs inside a ``torch.func``
  transform (or is being compiled), where in-place arithmetic and data-dependent checks are
  not allowed.

Every draw takes ``generator=`` (``None``: PyTorch's global generator) and draws in the logical
order of its shape, so that the numbers do not depend on the memory layout of the input.
"""
from typing import Optional, Sequence

import torch

from . import checks
# Re-exported: callers have always found them here.
from .transforms import inside_transform, inside_vmap  # noqa: F401

Tensor = torch.Tensor


def working_dtype(like) -> torch.dtype:
    """The dtype random numbers and sampling work in for ``like`` (a tensor or a dtype):
    float64 for float64, float32 for everything else (float32, float16, bfloat16)."""
    dtype = like if isinstance(like, torch.dtype) else like.dtype
    return torch.float64 if dtype == torch.float64 else torch.float32


def uniform(shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator],
            uniforms: Optional[Tensor] = None) -> Tensor:
    """Uniform numbers in (0, 1], ``1 - U`` with ``U = torch.rand(shape)``, in the working dtype
    of ``like`` and on its device. Excluding 0 keeps masked categories (probability 0) unsampled.

    ``uniforms``: the ``U`` drawn by the caller (shape ``shape``, values in [0, 1), as
    ``torch.rand`` draws them), used instead of drawing: ``uniforms=torch.rand(shape,
    generator=g)`` gives the numbers ``generator=g`` would. It lets code compiled with
    ``torch.compile(fullgraph=True)`` use its own random stream (a generator cannot be traced)."""
    dtype = working_dtype(like)
    if uniforms is not None:
        if not isinstance(uniforms, torch.Tensor) or not uniforms.is_floating_point():
            raise TypeError(f"uniforms must be a floating tensor of numbers in [0, 1) (as "
                            f"torch.rand draws them); got {type(uniforms).__name__}"
                            + (f" of dtype {uniforms.dtype}" if isinstance(uniforms, torch.Tensor) else ""))
        if tuple(uniforms.shape) != tuple(shape):
            raise ValueError(f"uniforms must have shape {tuple(shape)} (one number per categorical "
                             f"variable: the logits' shape without the category dimension); got "
                             f"{tuple(uniforms.shape)}")
        if checks.validate_args_enabled() and uniforms.numel() and (
                (uniforms < 0).any() or (uniforms >= 1).any()):
            raise ValueError(f"uniforms must lie in [0, 1) (as torch.rand draws them); got min "
                             f"{float(uniforms.min())}, max {float(uniforms.max())}")
        return 1.0 - uniforms.to(device=like.device, dtype=dtype)   # out of place: the caller's
    if generator is not None and torch.compiler.is_compiling():
        u = _rand_outside_graph(tuple(shape), generator, like.device, dtype)
    else:
        u = torch.rand(shape, generator=generator, device=like.device, dtype=dtype)
    return u.neg_().add_(1.0)     # in place on the fresh tensor: the same numbers as 1.0 - u


@torch.compiler.disable
def _rand_outside_graph(shape, generator, device, dtype) -> Tensor:
    """torch.rand from a torch.Generator, which torch.compile cannot trace: run eagerly, so that a
    compiled call given ``generator=`` breaks its graph here, once, instead of failing."""
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def inverse_cdf(probs: Tensor, u: Tensor) -> Tensor:
    """Category indices with ``P(index = i) = probs[..., i]`` from uniform numbers ``u`` in
    (0, 1] (shape ``probs.shape[:-1]``); rows need not sum exactly to one."""
    if probs.dtype in (torch.float16, torch.bfloat16):
        probs = probs.float()
    cdf = probs.cumsum(-1)
    # The index is the number of categories whose cumulative mass lies below u * total, found by
    # a binary search per row (cheaper than comparing every category). The clamp keeps a NaN row,
    # possible only with the input checks off, from giving an index out of range.
    target = (u * cdf[..., -1]).unsqueeze(-1)
    return torch.searchsorted(cdf, target).squeeze(-1).clamp(max=probs.shape[-1] - 1)


def draw_index(probs: Tensor, logits: Tensor, sample, generator: Optional[torch.Generator],
               uniforms: Optional[Tensor] = None) -> Tensor:
    """Category indices for ``probs`` (categories last): ``sample`` when given (checked against
    ``logits``: integer indices in range, shaped like ``logits`` without the categories), else
    drawn by the inverse CDF from ``uniforms`` (see :func:`uniform`) or ``generator``."""
    return draw_index_unchecked(probs, logits, sample, generator, uniforms)[0]


def draw_index_unchecked(probs: Tensor, logits: Tensor, sample, generator: Optional[torch.Generator],
                         uniforms: Optional[Tensor] = None):
    """:func:`draw_index` and the rows of ``sample`` whose range was not checked and is out of
    range (checks off, or device values unchecked): ``(index, invalid)``, with those rows' index
    set to 0 (gathers stay in bounds) and ``invalid`` None when no such row is possible. The
    caller makes those rows NaN (``checks.mark_invalid``): never a real category."""
    if sample is not None:
        if uniforms is not None:
            raise ValueError("give either sample= or uniforms=, not both")
        return checks.sample_index(sample, logits)
    return inverse_cdf(probs, uniform(probs.shape[:-1], probs, generator, uniforms)), None


def one_hot(index: Tensor, like: Tensor) -> Tensor:
    """One-hot rows (dtype and number of categories of ``like``) for ``index``; made by a
    comparison, not a scatter, so that it works under ``torch.func.vmap``."""
    categories = torch.arange(like.shape[-1], device=like.device)
    return (index.unsqueeze(-1) == categories).to(like.dtype)


def exponential(shape: Sequence[int], like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Exp(1) draws as ``-log(1 - U)``, in the working dtype of ``like``; out of place so that
    ``torch.func.vmap`` can batch them, drawn in logical order (the noise must not depend on the
    memory layout of ``like``); clamped away from 0, whose logarithm the conditional Gumbel
    formula would turn into an infinite logit."""
    dtype = working_dtype(like)
    if generator is not None and torch.compiler.is_compiling():
        u = _rand_outside_graph(tuple(shape), generator, like.device, dtype)
    else:
        u = torch.rand(shape, generator=generator, device=like.device, dtype=dtype)
    return (-torch.log1p(-u)).clamp(min=torch.finfo(dtype).tiny)


# ------------------------------------------------------------------- torch.func and compile
__all__ = ["working_dtype", "uniform", "inverse_cdf", "draw_index", "draw_index_unchecked", "one_hot", "exponential", "official_sample",
           "inside_transform", "inside_vmap"]


# ------------------------------------------------------------------- the official package's draws
def official_sample(logits: Tensor, *, dim: int = -1,
                    generator: Optional[torch.Generator] = None) -> Tensor:
    """Category indices drawn as the official ``reinmax`` package draws them, for ``sample=``.

    The official package (and the authors' scripts) draw with
    ``torch.multinomial(softmax(logits).view(-1, n), 1)``: the same distribution as this
    package's inverse CDF (:func:`draw_index`) but different numbers from the same seed. To
    reproduce an old run's samples, pass these indices to an estimator whose backward depends
    only on the sample (ST, ReinMax)::

        y, soft = reinmax.reinmax(logits, tau, sample=reinmax.estimators.sampling.official_sample(logits))

    Given the same global seed (or ``generator``) and the same sequence of calls, this gives the
    official package's samples (the temperature does not enter the draw). It costs what
    ``torch.multinomial`` costs, several times the inverse CDF. ``dim`` is the category
    dimension; the softmax is taken in the logits' dtype, as the official code takes it.
    """
    dim = checks.check_logits(logits, dim)
    probs = torch.softmax(logits.detach().movedim(dim, -1), -1)
    rows = probs.reshape(-1, probs.shape[-1])
    index = torch.multinomial(rows, 1, replacement=True, generator=generator)
    return index.reshape(probs.shape[:-1])
