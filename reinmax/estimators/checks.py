"""Input checks shared by every estimator.

Three kinds of checks, as in ``torch.distributions``:

* cheap checks on Python values and tensor metadata (the temperature, the dtype, the shape, the
  category dimension, the type of ``generator``): always run;
* value checks that need a pass over the data and a branch on its result (NaN or infinite
  logits, rows of all -inf, ``sample=`` indices out of range): run while
  ``set_validate_args(True)`` (the default), except inside ``torch.func.vmap`` and while
  ``torch.compile`` traces, where a data-dependent branch is not possible;
* the same value checks on tensors on a GPU (or any device other than the CPU): reading a
  device value on the host waits for the device (a synchronisation at every call, which stalls
  the pipeline of queued kernels), so they run only when asked for with
  ``set_validate_args(True, device_values=True)``. Turn it on while debugging.

Checks off means unchecked: with ``set_validate_args(False)`` (or unchecked device values) bad
input gives undefined results (NaN, garbage or an indexing error), as ``torch.distributions``
does with ``validate_args=False``. One promise holds even then: the straight-through fast paths
never turn an out-of-range ``sample=`` index (e.g. -1) into a real category; such a row comes out
as NaN (see :func:`sample_index`).
"""
import math
import numbers

import torch

from .transforms import inside_vmap

_VALIDATE = True
_DEVICE_VALUES = False


def set_validate_args(value: bool, device_values=None) -> None:
    """Turn the data-dependent input checks on or off for every estimator (on by default).

    ``device_values`` (default: leave as it is, initially False): whether the value checks also
    run on tensors that live on a GPU (or another non-CPU device), where each check reads a
    device value on the host and so synchronises with the device at every call. Shape and dtype
    checks always run. ``set_validate_args(True, device_values=True)`` checks everything.
    With ``value=False`` nothing is checked: bad input gives undefined results.
    """
    global _VALIDATE, _DEVICE_VALUES
    if device_values is not None:
        if not isinstance(device_values, bool):
            raise TypeError(f"device_values must be True, False or None; got device_values={device_values!r}")
        _DEVICE_VALUES = device_values
    _VALIDATE = bool(value)


def validate_args_enabled() -> bool:
    """Whether the data-dependent checks run now: switched on, and not inside
    ``torch.func.vmap`` (which cannot branch on tensor values) nor while ``torch.compile`` traces
    the code (where such a branch would break the graph); run the function once without vmap
    or compile to have your inputs checked. Tensors on a GPU are checked only with
    ``device_values=True`` (``reinmax.estimators.checks.check_values``)."""
    return _VALIDATE and not inside_vmap()


def device_values_checked() -> bool:
    """Whether value checks also run on non-CPU tensors (``set_validate_args(..., device_values=)``)."""
    return _DEVICE_VALUES


def on_device(tensor: torch.Tensor) -> bool:
    """Whether reading ``tensor``'s values on the host would synchronise with a device."""
    return bool(tensor.is_cuda) or tensor.device.type not in ("cpu", "meta")


def check_values(tensor: torch.Tensor) -> bool:
    """Whether to run a value check (one that reads data on the host) on ``tensor`` now: checks
    on (:func:`validate_args_enabled`), and ``tensor`` on the CPU unless device values are
    asked for."""
    return validate_args_enabled() and (_DEVICE_VALUES or not on_device(tensor))


def check_tau(tau, like=None):
    """``tau`` checked (a positive finite number, or a tensor holding one) and returned as a float.

    ``like``: the logits, as the estimators pass them. While ``torch.compile`` traces, ``tau`` is
    then returned as a 0-d tensor (working dtype of ``like``, on its device) that the estimators
    compute with, so that a temperature that changes between calls is an input of one graph and
    not a constant baked into a new graph per value (see "torch.compile" in
    :mod:`reinmax.estimators.categorical`): a tensor ``tau`` is used as it is, without reading its
    value on the host (``.item()`` would break the graph; its value check is skipped, as the other
    value checks are while compiling), and a Python float, which dynamo turns into a symbolic
    float once it has seen it change, is multiplied into a tensor (``torch.tensor(tau)`` would
    specialise on its value). The number 1 stays a number: the estimators' shortcuts at tau = 1
    (e.g. the tempered softmax is the softmax) keep compiled code at its speed (ST's compiled
    step ran measurably slower through the general formulas); on a symbolic float the
    comparison is a guard, so a float annealed to exactly 1 compiles one more graph. Outside
    compiled code a tensor is read with ``.item()``."""
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"tau must be a positive finite number; got a tensor of shape {tuple(tau.shape)}")
        if like is not None and torch.compiler.is_compiling():
            return tau.detach().reshape(()).to(device=like.device, dtype=_working(like))
        tau = tau.item()
    # Only real numbers: float("2") would quietly accept a string, and True is not a temperature.
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a positive finite number; got tau={tau!r} "
                        f"of type {type(tau).__name__}")
    value = float(tau)
    # Comparisons, not math.isfinite: on a symbolic float (compiled code) they become guards that
    # hold for every valid temperature, where math.isfinite breaks the graph. NaN fails both.
    if not 0 < value < math.inf:
        raise ValueError(f"tau must be a positive finite number (tau > 0); got tau={tau!r}")
    if like is not None and torch.compiler.is_compiling() and value != 1.0:
        return like.new_ones((), dtype=_working(like)) * value
    return value


def _working(like: torch.Tensor) -> torch.dtype:
    """reinmax.estimators.sampling.working_dtype (which imports this module): float64 for float64
    logits, float32 otherwise."""
    return torch.float64 if like.dtype == torch.float64 else torch.float32


def unit_tau(tau) -> bool:
    """Whether ``tau`` is the number 1, where the estimators take shortcuts (e.g. the tempered
    softmax is the softmax). A tensor ``tau`` (compiled code, :func:`check_tau`) never is: a
    branch on its value would break the graph, and the general formulas give the same values."""
    return not isinstance(tau, torch.Tensor) and tau == 1.0


def check_logits(logits, dim: int) -> int:
    """Check dtype and shape; return the category dimension as a non-negative index."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor; got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(
            f"logits must have a floating dtype (float16, bfloat16, float32 or float64); got {logits.dtype}"
        )
    if logits.dim() == 0:
        raise ValueError("logits must have at least one dimension (the categories); got a 0-d tensor")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an integer; got dim={dim!r}")
    if not -logits.dim() <= dim < logits.dim():
        raise ValueError(f"dim={dim} is out of range for logits with {logits.dim()} dimensions")
    dim = dim % logits.dim()
    if logits.shape[dim] == 0:
        raise ValueError(f"logits has an empty category dimension (dim={dim}, shape {tuple(logits.shape)})")
    return dim


def diagnose_bad_rows(logits: torch.Tensor) -> None:
    """Explain why softmax(logits) over the last dimension produced NaN (called only on failure)."""
    if torch.isnan(logits).any():
        raise ValueError("logits contain NaN; every logit must be a number (-inf marks a masked category)")
    if torch.isposinf(logits).any():
        raise ValueError("logits contain +inf; use finite logits (-inf marks a masked category)")
    if torch.isneginf(logits).all(dim=-1).any():
        raise ValueError("a row of logits is all -inf: at least one category must be possible")
    raise ValueError("softmax(logits) is not finite; check the logits for extreme values")


def check_softmax_rows(probs: torch.Tensor, logits: torch.Tensor) -> None:
    """Raise a clear error when ``probs = softmax(logits)`` (categories last) is not finite.

    softmax gives NaN for NaN, +inf or all -inf rows, so one sum over all of ``probs`` detects
    all three (a full reduction costs a fraction of a per-row one on short rows; float32 or
    float64 accumulation keeps a half-precision sum of many rows from overflowing)."""
    if not check_values(probs):
        return
    total = probs.sum(dtype=torch.float64 if probs.dtype == torch.float64 else torch.float32)
    if not torch.isfinite(total):
        diagnose_bad_rows(logits.detach())


def check_sample(sample, logits: torch.Tensor) -> torch.Tensor:
    """``sample`` holds category indices, shaped like logits (category dim moved last) without it."""
    if not isinstance(sample, torch.Tensor):
        sample = torch.as_tensor(sample, device=logits.device)
    if sample.is_floating_point() or sample.is_complex() or sample.dtype == torch.bool:
        raise TypeError(f"sample must hold integer category indices; got dtype {sample.dtype}")
    expected = tuple(logits.shape[:-1])
    if tuple(sample.shape) != expected:
        raise ValueError(
            f"sample must have the shape of logits without the category dimension, {expected}; "
            f"got {tuple(sample.shape)}"
        )
    n = logits.shape[-1]
    if sample.numel() and check_values(sample) and ((sample < 0).any() or (sample >= n).any()):
        raise ValueError(
            f"sample holds category indices out of range: allowed 0..{n - 1}, got "
            f"min {int(sample.min())}, max {int(sample.max())}"
        )
    return sample.to(device=logits.device, dtype=torch.long)


def sample_index(sample, logits: torch.Tensor):
    """:func:`check_sample`, and where its range check did not run (checks off, or a device
    tensor without ``device_values=True``), the rows whose index is out of range.

    Returns ``(index, invalid)``: ``invalid`` is None when the range was checked, else a boolean
    tensor shaped like ``index``, and ``index`` has those rows set to 0 so that gathers and
    scatters stay in bounds (no host read, no synchronisation). The caller makes those rows of
    its one-hot NaN (:func:`mark_invalid`): an unchecked bad index never becomes a real category
    (plain indexing would read -1 as the last one)."""
    index = check_sample(sample, logits)
    if index.numel() == 0 or check_values(index):
        return index, None
    invalid = (index < 0) | (index >= logits.shape[-1])
    return index.masked_fill(invalid, 0), invalid


def mark_invalid(y: torch.Tensor, invalid, dim: int = -1) -> torch.Tensor:
    """``y`` with NaN in the rows ``invalid`` marks (categories at ``dim``); ``y`` itself when
    ``invalid`` is None. Out of place, so gradients flow to the other rows as before."""
    if invalid is None:
        return y
    return y.masked_fill(invalid.unsqueeze(dim), float("nan"))


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {name}={value!r}")
    return value


def check_generator(generator) -> None:
    """``generator`` is None (PyTorch's global generator) or a ``torch.Generator``; anything else
    (a seed, a NumPy generator) is a TypeError here, not an obscure one from ``torch.rand``, and
    not silently ignored where the call needs no random numbers (``sample=`` given)."""
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None; got generator={generator!r} "
                        f"of type {type(generator).__name__} (for a seed s, pass "
                        f"torch.Generator().manual_seed(s))")
