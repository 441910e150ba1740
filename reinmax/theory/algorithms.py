"""Algorithms 1 and 2 of the paper, written line by line as the paper prints them.

These are for reading: the book includes them from here, and the tests hold them equal (forward
values and gradients) to the fast :func:`reinmax.st` and :func:`reinmax.reinmax`. ``sample``
takes the category indices that line 2 draws, so both versions can be given the same draw.
"""
import torch


def sample_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """Line 2: a one-hot sample from ``probs`` along the last dimension."""
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
    return torch.nn.functional.one_hot(index, probs.shape[-1]).to(probs.dtype)


def st_algorithm1(theta: torch.Tensor, tau: float = 1.0, sample=None) -> torch.Tensor:
    """Algorithm 1 (ST). ``theta``: softmax input, last dimension the categories."""
    pi_0 = torch.softmax(theta, -1)                                           # line 1
    D = (sample_one_hot(pi_0.detach()) if sample is None                      # line 2
         else torch.nn.functional.one_hot(sample, theta.shape[-1]).to(theta.dtype))
    pi_1 = torch.softmax(theta / tau, -1)                                     # line 3
    D = pi_1 - pi_1.detach() + D                                              # line 4
    return D                                                                  # line 5


def reinmax_algorithm2(theta: torch.Tensor, tau: float = 1.0, sample=None) -> torch.Tensor:
    """Algorithm 2 (ReinMax). ``theta``: softmax input, last dimension the categories."""
    pi_0 = torch.softmax(theta, -1)                                           # line 1
    D = (sample_one_hot(pi_0.detach()) if sample is None                      # line 2
         else torch.nn.functional.one_hot(sample, theta.shape[-1]).to(theta.dtype))
    pi_1 = (D + torch.softmax(theta / tau, -1)) / 2                           # line 3
    pi_1 = torch.softmax((torch.log(pi_1) - theta).detach() + theta, -1)      # line 4
    pi_2 = 2 * pi_1 - 0.5 * pi_0                                              # line 5
    D = pi_2 - pi_2.detach() + D                                              # line 6
    return D                                                                  # line 7
