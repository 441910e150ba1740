r"""DisARM-Tree (Dong, Mnih and Tucker 2021, "Coupled gradient estimators for discrete latent
variables"): DisARM for a categorical variable written as a balanced binary tree of C - 1 binary
decisions, as their public code defines it (google-research ``coupled_estimators``, the
``tree_structure`` branch of the DisARM estimator). Table 5 of the paper quotes it.

For C = 2^depth categories, node i of the tree (level order, root 0) holds the logit
``phi_i = logsumexp(logits of its right half) - logsumexp(logits of its left half)``, so that
following the bits ``b_i = 1`` (right) from the root to a leaf draws category ``z`` with
probability ``softmax(logits)_z``. One uniform per node gives the antithetic pair
``b = 1[u < sigmoid(phi)]``, ``b~ = 1[1 - u < sigmoid(phi)]`` and two categories ``z``, ``z~``
(every categorical variable of a sample at once, so two evaluations of f). The estimate of
``d E[f] / d phi_i``:

* node on both paths: ``1/2 (f(z) - f(z~)) (-1)^{b~_i} 1[b_i != b~_i] sigmoid(|phi_i|)``
  (DisARM for that node);
* node on the path of z only: ``1/2 (f(z) - f(z~)) (b_i - sigmoid(phi_i))``; on the path of z~
  only: ``1/2 (f(z~) - f(z)) (b~_i - sigmoid(phi_i))``; elsewhere 0;

and it reaches the softmax logits through the (differentiable) map logits -> phi. It is unbiased
(``tests/test_score_family.py`` enumerates every pair of node bits under the coupled law).
"""
import itertools
import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["disarm_tree", "tree_logits", "tree_categories", "pair_probability"]


def _depth(C: int) -> int:
    depth = int(round(math.log2(C))) if C >= 2 else 0
    if C < 2 or 2 ** depth != C:
        raise ValueError(f"DisARM-Tree needs a power of two categories (a balanced binary tree); "
                         f"got {C}")
    return depth


def tree_logits(logits: Tensor) -> Tensor:
    """The C - 1 node logits (level order) of a balanced tree over the last dimension's C
    categories: right half against left half of each node's range."""
    C = logits.shape[-1]
    depth = _depth(C)
    nodes = []
    for level in range(depth):
        width = C >> level                                     # categories under a node
        blocks = logits.unflatten(-1, (2 ** level, 2, width // 2))
        lse = torch.logsumexp(blocks, -1)                      # (..., 2^level, 2)
        nodes.append(lse[..., 1] - lse[..., 0])
    return torch.cat(nodes, -1)


def tree_categories(bits: Tensor) -> Tuple[Tensor, Tensor]:
    """From node bits ``(..., C - 1)`` (level order): the category reached from the root and a
    0/1 mask of the nodes on its path, ``(...,)`` and ``(..., C - 1)``."""
    n = bits.shape[-1]
    depth = _depth(n + 1)
    index = torch.zeros(bits.shape[:-1], dtype=torch.long, device=bits.device)
    on_path = torch.zeros_like(bits)
    category = torch.zeros_like(index)
    for level in range(depth):
        node = (2 ** level - 1) + category                     # node index at this level
        on_path.scatter_(-1, node.unsqueeze(-1), 1.0)
        bit = bits.gather(-1, node.unsqueeze(-1)).squeeze(-1).long()
        category = 2 * category + bit
    return category, on_path


def disarm_tree(logits: Tensor, f: Callable, *, generator: Optional[torch.Generator] = None,
                bits: Optional[Tuple[Tensor, Tensor]] = None):
    """DisARM-Tree for categorical ``logits`` of shape ``(*batch, V, C)`` (V variables of C
    categories, C a power of two, one sample per batch index).

    ``f`` receives the one-hot pair ``(2, *batch, V, C)`` and returns one value per sample,
    ``(2, *batch)``. Returns ``(surrogate, values)``, both ``(2, *batch)``: ``values`` are f's
    values (with f's graph); the gradient of ``surrogate.mean()`` with respect to ``logits`` is
    the estimate averaged over the batch (as for :func:`reinmax.rloo`). ``bits=(b, b_tilde)``
    (each ``(*batch, V, C - 1)`` of 0/1) fixes the node bits instead of drawing them (tests).
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point() or logits.dim() < 2:
        raise ValueError("logits must be a floating tensor (*batch, V, C): V categorical "
                         "variables of C categories per sample")
    C = logits.shape[-1]
    _depth(C)
    phi = tree_logits(logits)                                  # (*batch, V, C-1), differentiable
    sig = torch.sigmoid(phi.detach())
    if bits is None:
        u = torch.rand(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device)
        b1, b2 = (u < sig).to(phi.dtype), (1 - u < sig).to(phi.dtype)
    else:
        b1, b2 = (x.to(dtype=phi.dtype, device=phi.device) for x in bits)
        if b1.shape != phi.shape or b2.shape != phi.shape:
            raise ValueError(f"bits must be two tensors of shape {tuple(phi.shape)}")
    z1, path1 = tree_categories(b1)
    z2, path2 = tree_categories(b2)
    one_hot = torch.nn.functional.one_hot(torch.stack([z1, z2]), C).to(logits.dtype)
    values = f(one_hot)
    expected = (2,) + tuple(logits.shape[:-2])
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != expected:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"f must return one value per sample of the pair, shape {expected}; got {got}")
    diff = 0.5 * (values[0] - values[1]).detach()[..., None, None]     # (*batch, 1, 1)
    both, only1, only2 = path1 * path2, path1 * (1 - path2), (1 - path1) * path2
    signal = diff * (both * (1 - 2 * b2) * (b1 != b2).to(phi.dtype) * torch.sigmoid(phi.detach().abs())
                     + only1 * (b1 - sig) - only2 * (b2 - sig))
    score = (signal * phi).sum((-1, -2))                       # (*batch): d/dphi = the estimate
    surrogate = values + (score - score.detach())
    return surrogate, values


def all_node_pairs(n: int, V: int, dtype=torch.float64):
    """Every pair of node-bit arrays for V variables of n nodes: (N, V, n) twice (tests)."""
    pairs = torch.tensor(list(itertools.product((0, 1, 2, 3), repeat=n * V))).reshape(-1, V, n)
    return (pairs // 2).to(dtype), (pairs % 2).to(dtype)


def pair_probability(b1: Tensor, b2: Tensor, logits: Tensor) -> Tensor:
    """The probability of node bits ``(b1, b2)`` under the antithetic coupling, per sample."""
    sig = torch.sigmoid(tree_logits(logits))
    both = (2 * sig - 1).clamp(min=0)
    one = torch.minimum(sig, 1 - sig)
    none = (1 - 2 * sig).clamp(min=0)
    p = torch.where(b1 == b2, torch.where(b1 == 1, both, none), one)
    return p.prod(-1).prod(-1)
