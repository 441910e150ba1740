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


def without_jvp(function):
    """A subclass of the autograd Function class ``function`` without its forward-mode rule:
    the same forward, setup_context, backward and vmap rule, and ``jvp`` set back to
    ``torch.autograd.Function.jvp``. torch.compile refuses to trace a Function that defines
    ``jvp`` (dynamo, torch 2.13: "Unsupported custom jvp", which fails ``fullgraph=True``), so the
    estimators apply this one while compiling, where forward-mode AD does not run."""
    return type(function.__name__ + "Compiled", (function,),
                {"jvp": staticmethod(torch.autograd.Function.jvp), "__doc__": function.__doc__})


def symmetric_jvp(backward, outputs: int):
    """A ``jvp`` staticmethod (forward-mode AD: ``torch.func.jvp``, ``torch.func.jacfwd``,
    forward-over-reverse Hessian-vector products) for an autograd Function whose backward is
    ``backward(ctx, grad_hard, grad_soft, *unused)`` with symmetric Jacobians: for ``y_hard``
    and for ``y_soft`` the Jacobian ``J`` in the logits equals its transpose, so ``J v = J^T v``
    is the closed-form backward applied to the tangent, once per output (the outputs after the
    first two have no tangent). The estimators' backward passes are written with differentiable
    operations, so a jvp over a grad differentiates them as a double backward does. The
    Function saves the same tensors with ``ctx.save_for_forward`` as for backward."""
    rest = (None,) * (outputs - 2)

    def jvp(ctx, tangent, *_):
        return (backward(ctx, tangent, None, *rest)[0], backward(ctx, None, tangent, *rest)[0]) + rest
    return staticmethod(jvp)


__all__ = ["inside_transform", "inside_vmap", "symmetric_jvp", "without_jvp"]
