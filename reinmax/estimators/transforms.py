"""Whether the code runs inside a ``torch.func`` transform or is being compiled.

The lowest module of the estimator library: the input checks (:mod:`reinmax.estimators.checks`)
and the sampling primitives (:mod:`reinmax.estimators.sampling`) both ask it, so neither has to
import the other to know.
"""
import torch


def _transform_levels():
    """The active torch.func transforms, innermost last (empty outside any transform)."""
    return torch._C._functorch.get_interpreter_stack()


def inside_transform() -> bool:
    """Whether the code runs inside a ``torch.func`` transform (vmap, grad, jvp, ...) or is being
    traced by ``torch.compile``.

    Callers then use functional operations only (no ``out=``, no in-place arithmetic on fresh
    tensors, no hand-fused autograd Functions that need plain autograd): the values are the same.
    Under ``torch.compile`` the answer is "yes" without asking: the functorch interpreter stack
    is a C++ object that Dynamo cannot trace (asking would break the graph, and fail under
    ``fullgraph=True``), and the functional forms are what a compiler wants anyway.
    """
    if torch.compiler.is_compiling():
        return True
    return bool(_transform_levels())


def inside_vmap() -> bool:
    """Whether the code runs inside ``torch.func.vmap`` (at any level) or is being traced by
    ``torch.compile`` (see :func:`inside_transform` for why compiling counts as inside).

    vmap cannot branch on tensor values, so the data-dependent input checks are skipped there
    (and while compiling, where such a branch would break the graph); in-place arithmetic fails
    there when the other operand is batched and the fresh tensor is not."""
    if torch.compiler.is_compiling():
        return True
    levels = _transform_levels()
    return bool(levels) and any(level.key() == torch._C._functorch.TransformType.Vmap
                                for level in levels)


__all__ = ["inside_transform", "inside_vmap"]
