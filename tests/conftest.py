"""Shared helpers for the estimator tests: random test functions f, float64 logits, fixtures.

Every f here takes one-hot configurations of shape ``(B, *logits.shape)`` (as
``reinmax.theory.exact`` passes them) and returns ``B`` values. They are nonlinear on purpose: for a
linear f every estimator's target equals the true gradient, and a test could not tell them apart.
"""
import pytest
import torch

import reinmax

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                                   reason="CUDA is not available on this machine")


def _mnist_available() -> bool:
    from reinmax.data.mnist import mnist_files
    try:
        mnist_files("train", download=False)
        mnist_files("test", download=False)
        return True
    except (FileNotFoundError, OSError):
        return False


needs_mnist = pytest.mark.skipif(not _mnist_available(), reason="MNIST files not found (set REINMAX_DATA)")


def random_logits(shape, seed, scale=1.0):
    """float64 logits with a fixed seed; scale > 1 makes the probabilities uneven."""
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(shape, generator=generator, dtype=torch.float64)


def random_nonlinear_f(m, n, seed):
    """A random smooth f of m one-hot variables with n categories: a sine of a bilinear form,
    plus a squared linear term and a cubic term, so that the gradient changes from vertex to
    vertex (Heun's rule is then not exact, and ST's and ReinMax's targets differ)."""
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(m * n, m * n, generator=generator, dtype=torch.float64)
    a = torch.randn(m * n, generator=generator, dtype=torch.float64)
    b = torch.randn(m * n, generator=generator, dtype=torch.float64)

    def f(D):
        x = D.reshape(D.shape[0], m * n)
        return torch.sin(((x @ W) * x).sum(-1)) + (x @ a) ** 2 + 0.3 * (x @ b) ** 3

    return f


def random_quadratic_f(m, n, seed):
    """A random quadratic f: its gradient is linear, so Heun's (trapezoid) rule is exact for it."""
    generator = torch.Generator().manual_seed(seed)
    W = torch.randn(m * n, m * n, generator=generator, dtype=torch.float64)
    a = torch.randn(m * n, generator=generator, dtype=torch.float64)

    def f(D):
        x = D.reshape(D.shape[0], m * n)
        return ((x @ W) * x).sum(-1) + x @ a

    return f


@pytest.fixture
def no_validation():
    """Switch the data-dependent checks off for one test and always switch them back on."""
    reinmax.set_validate_args(False)
    try:
        yield
    finally:
        reinmax.set_validate_args(True)


@pytest.fixture(autouse=True)
def _validation_is_restored():
    """Every test starts with checks on; a test that leaves them off fails loudly here."""
    assert reinmax.validate_args_enabled(), "a previous test left set_validate_args(False)"
    yield
    assert reinmax.validate_args_enabled(), "this test left set_validate_args(False)"
