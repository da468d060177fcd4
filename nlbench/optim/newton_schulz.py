"""Newton-Schulz orthogonalisation: the output nonlinearity sigma of Eq. 52 that turns momentum into Muon.

Each iteration applies an odd matrix polynomial `X <- a X + b (X X^T) X + c (X X^T)^2 X`, which pushes every
singular value of X towards 1 while keeping the singular vectors. That is, it approximates
`U V^T` for `G = U S V^T`. `X` is first scaled to spectral norm <= 1 (through the Frobenius norm).

- "quintic" uses (3.4445, -4.7750, 2.0315), the coefficients of Muon (K. Jordan, 2024). Five steps map singular
  values in [1e-3, 1] into roughly [0.7, 1.2], which is enough for an update direction, quickly.
- "cubic" uses (1.5, -0.5, 0), the classical iteration. It converges to exactly `U V^T`, but slowly for small
  singular values. The paper's Eqs. 43-44 are one gradient step of `||X^T X - I||^2`, and that step is this
  iteration.
"""

from __future__ import annotations

import torch

COEFFICIENTS = {"quintic": (3.4445, -4.7750, 2.0315), "cubic": (1.5, -0.5, 0.0)}


def newton_schulz(G: torch.Tensor, steps: int = 5, kind: str = "quintic", eps: float = 1e-7) -> torch.Tensor:
    """Approximately orthogonalise a matrix (or a batch of matrices on the last two dimensions)."""
    if G.ndim < 2:
        raise ValueError(f"newton_schulz needs a matrix, got shape {tuple(G.shape)}")
    a, b, c = COEFFICIENTS[kind]
    X = G / (G.norm(dim=(-2, -1), keepdim=True) + eps)
    tall = X.shape[-2] > X.shape[-1]
    if tall:  # iterate on the smaller Gram matrix
        X = X.mT
    for _ in range(steps):
        A = X @ X.mT
        X = a * X + (b * A + c * A @ A) @ X
    return X.mT if tall else X
