"""Input checks shared by every estimator.

Checks that need a pass over the data can be switched off globally with
``set_validate_args(False)``, as ``torch.distributions`` does. The cheap checks (the
temperature, the dtype, the shape) always run.
"""
import math
import numbers

import torch

# The module, not its names: reinmax.sampling calls check_sample from here in turn.
from . import sampling

_VALIDATE = True


def set_validate_args(value: bool) -> None:
    """Turn the data-dependent input checks on or off for every estimator (on by default)."""
    global _VALIDATE
    _VALIDATE = bool(value)


def validate_args_enabled() -> bool:
    """Whether the data-dependent checks run now: switched on, and not inside
    ``torch.func.vmap`` (which cannot branch on tensor values) nor while ``torch.compile`` traces
    the code (where such a branch would break the graph); run the function once without vmap
    or compile to have your inputs checked."""
    return _VALIDATE and not sampling.inside_vmap()


def check_tau(tau) -> float:
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1:
            raise ValueError(f"tau must be a positive finite number; got a tensor of shape {tuple(tau.shape)}")
        tau = tau.item()
    # Only real numbers: float("2") would quietly accept a string, and True is not a temperature.
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a positive finite number; got tau={tau!r} "
                        f"of type {type(tau).__name__}")
    value = float(tau)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"tau must be a positive finite number (tau > 0); got tau={tau!r}")
    return value


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
    if not validate_args_enabled():
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
    if sample.numel() and validate_args_enabled() and ((sample < 0).any() or (sample >= n).any()):
        raise ValueError(
            f"sample holds category indices out of range: allowed 0..{n - 1}, got "
            f"min {int(sample.min())}, max {int(sample.max())}"
        )
    return sample.to(device=logits.device, dtype=torch.long)


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {name}={value!r}")
    return value
