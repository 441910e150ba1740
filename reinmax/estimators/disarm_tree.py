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

from .checks import check_generator, check_logits, sample_index
from .registry import EstimatorSpec, register

__all__ = ["disarm_tree", "tree_logits", "tree_categories", "pair_probability", "padded_logits"]


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


def _padded_width(C: int) -> int:
    """The tree's leaves: C rounded up to a power of two (at least 2)."""
    return max(2, 1 << (C - 1).bit_length())


def padded_logits(logits: Tensor) -> Tensor:
    """``(..., C)`` -> ``(..., C')`` with C' a power of two: the added leaves, and masked
    categories (-inf), get a logit so low that their probability is exactly 0 in the working
    precision while every log-sum-exp of the tree stays finite (so no NaN gradient)."""
    C = logits.shape[-1]
    low = torch.finfo(logits.dtype).min / 4                    # exp(low - anything) == 0
    logits = torch.where(torch.isneginf(logits), torch.full_like(logits, low), logits)
    extra = _padded_width(C) - C
    if extra:
        logits = torch.cat([logits, logits.new_full(logits.shape[:-1] + (extra,), low)], -1)
    return logits


def _path_bits(index: Tensor, width: int) -> Tensor:
    """Node bits ``(..., width - 1)`` (level order) that lead from the root to category
    ``index``; bits of nodes off that path are 0 (they do not enter the estimate)."""
    depth = _depth(width)
    bits = torch.zeros(index.shape + (width - 1,), dtype=torch.float64, device=index.device)
    node = torch.zeros_like(index)
    for level in range(depth):
        bit = (index >> (depth - 1 - level)) & 1
        bits.scatter_(-1, ((2 ** level - 1) + node).unsqueeze(-1), bit.unsqueeze(-1).double())
        node = 2 * node + bit
    return bits


def disarm_tree(logits: Tensor, f: Callable, *, num_samples: int = 2, dim: int = -1, sample=None,
                generator: Optional[torch.Generator] = None, batch_dims: Optional[int] = None,
                bits: Optional[Tuple[Tensor, Tensor]] = None):
    """DisARM-Tree with the score family's contract (like :func:`reinmax.rloo` with its two draws):
    ``fn(logits, f, *, dim=-1, sample=None, generator=None, batch_dims=None) -> (surrogate,
    values)``.

    ``logits`` ``(*batch, *variables, C)`` (categories at ``dim``); ``batch_dims`` leading
    dimensions are samples (None: every dimension but the categories, one variable per sample).
    Any C works: a C that is not a power of two is padded with leaves of probability 0 (as are
    masked categories), which the antithetic pair never reaches. ``f`` receives the one-hot pair
    ``(2, *logits.shape)`` and returns one value per sample, ``(2, *batch)``. Returns
    ``(surrogate, values)``, both ``(2, *batch)``: ``values`` are f's values (with f's graph); the
    gradient of ``surrogate.mean(0).sum()`` with respect to ``logits`` is the estimate.
    ``num_samples`` is always 2 (one coupled pair). ``sample`` (indices ``(2, *batch,
    *variables)``) fixes the pair's categories; ``bits=(b, b_tilde)``, each ``(*batch, V, C' - 1)``
    of 0/1 over the padded tree, fixes the node bits instead (tests enumerate them).
    """
    if num_samples != 2 or isinstance(num_samples, bool):
        raise ValueError(f"num_samples must be 2 for DisARM-Tree (one antithetic pair); "
                         f"got num_samples={num_samples!r}")
    check_generator(generator)
    dim = check_logits(logits, dim)
    moved = logits.movedim(dim, -1)
    shape = tuple(moved.shape)
    if batch_dims is None:
        batch_dims = moved.dim() - 1
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int) or not 0 <= batch_dims < moved.dim():
        raise ValueError(f"batch_dims must be an integer from 0 to {moved.dim() - 1} (the dimensions "
                         f"before the categories); got batch_dims={batch_dims!r}")
    batch, C = shape[:batch_dims], shape[-1]
    grouped = moved.reshape(batch + (-1, C))                   # (*batch, V, C)
    padded = padded_logits(grouped)
    width = padded.shape[-1]
    phi = tree_logits(padded)                                  # (*batch, V, C'-1), differentiable
    sig = torch.sigmoid(phi.detach())
    if sample is not None and bits is not None:
        raise ValueError("give sample= (the pair's categories) or bits= (the node bits), not both")
    if sample is not None:
        index, invalid = sample_index(sample, moved.expand((2,) + shape))
        if invalid is not None:
            raise ValueError("sample holds category indices out of range")
        index = index.reshape((2,) + batch + (-1,))
        b1, b2 = (_path_bits(index[k], width).to(phi.dtype) for k in (0, 1))
    elif bits is None:
        u = torch.rand(phi.shape, generator=generator, dtype=phi.dtype, device=phi.device)
        b1, b2 = (u < sig).to(phi.dtype), (1 - u < sig).to(phi.dtype)
    else:
        b1, b2 = (x.to(dtype=phi.dtype, device=phi.device) for x in bits)
        if b1.shape != phi.shape or b2.shape != phi.shape:
            raise ValueError(f"bits must be two tensors of shape {tuple(phi.shape)}")
    z1, path1 = tree_categories(b1)
    z2, path2 = tree_categories(b2)
    # One-hot by comparison (F.one_hot reads the indices on the host to check them).
    categories = torch.arange(C, device=z1.device)
    pair = (torch.stack([z1, z2]).unsqueeze(-1) == categories).to(logits.dtype)
    values = f(pair.reshape((2,) + shape).movedim(-1, dim if dim < 0 else dim + 1))
    expected = (2,) + batch
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


register(EstimatorSpec(
    name="DisARM-Tree", family="score", function=disarm_tree, fixed={"num_samples": 2},
    sample_only_backward=True,
    description="DisARM on a balanced binary tree of the categories (Dong et al. 2021), one "
                "antithetic pair; Table 5",
    style=dict(color="#843c39", linestyle="--")))
