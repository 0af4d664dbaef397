"""Sparsity patterns: how many weights a layer prunes, N:M groups, and exact-count mask selection.

Every pruner in this package asks the same two questions -- *how many* weights to remove and *which*, given a
score (lower = prune first) -- and answers them here, so that all methods hit the requested sparsity exactly.

Conventions
-----------
* A mask is a boolean tensor shaped like the weight ``W`` (rows = output features, columns = input features);
  ``True`` marks a **pruned** (zeroed) weight, as in SparseGPT's ``mask1``.
* ``N:M`` means NVIDIA's semi-structured pattern: in every group of ``M`` consecutive input weights of a row,
  exactly ``N`` are **kept** (2:4 keeps two of four), so the sparsity is ``1 - N/M``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Pattern:
    """A sparsity target: unstructured ``sparsity`` in [0, 1), or an ``n:m`` semi-structured pattern."""

    sparsity: float
    n: int = 0
    m: int = 0

    @classmethod
    def make(cls, sparsity: float | None = None, n: int = 0, m: int = 0) -> Pattern:
        """Validate and build; with ``n:m`` the sparsity is implied (``1 - n/m``)."""
        if n or m:
            if not (0 < n < m):
                raise ValueError(f"N:M pattern needs 0 < n < m, got {n}:{m}")
            return cls(1.0 - n / m, n, m)
        if sparsity is None or not (0.0 <= sparsity < 1.0):
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        return cls(float(sparsity))

    @property
    def structured(self) -> bool:
        """True for an N:M pattern."""
        return self.m > 0

    def label(self) -> str:
        """``"2:4"`` or ``"0.5"``, for reports and tables."""
        return f"{self.n}:{self.m}" if self.structured else f"{self.sparsity:g}"


def n_pruned(numel: int, sparsity: float) -> int:
    """Number of weights to prune out of ``numel``: ``round(sparsity * numel)``."""
    return int(round(sparsity * numel))


def block_counts(rows: int, cols: int, sparsity: float, blocksize: int) -> list[int]:
    """Pruned-weight counts for consecutive column blocks whose sum is exactly ``n_pruned(rows*cols)``.

    Block ``b`` covering columns ``[c0, c1)`` prunes ``round(s·rows·c1) − round(s·rows·c0)`` weights, so no
    rounding error accumulates across blocks (SparseGPT's ``sort()[int(numel·s)]`` threshold prunes one extra
    weight per block and does not give an exact total).
    """
    edges = list(range(0, cols, blocksize)) + [cols]
    cum = [n_pruned(rows * c, sparsity) for c in edges]
    return [b - a for a, b in zip(cum[:-1], cum[1:])]


def lowest_k(score: torch.Tensor, k: int) -> torch.Tensor:
    """Mask (same shape as ``score``) marking exactly the ``k`` lowest entries over the whole tensor."""
    mask = torch.zeros(score.numel(), dtype=torch.bool, device=score.device)
    if k > 0:
        mask[torch.topk(score.flatten(), k, largest=False).indices] = True
    return mask.view_as(score)


def lowest_k_per_row(score: torch.Tensor, total: int) -> torch.Tensor:
    """Mask marking ``total`` entries, the lowest of each row (Wanda's per-output comparison group): every row
    prunes ``total // rows`` entries and the first ``total % rows`` rows one more, so the count is exact."""
    rows, cols = score.shape
    counts = torch.full((rows, 1), total // rows, device=score.device)
    counts[: total % rows] += 1
    rank = torch.argsort(torch.argsort(score, dim=1), dim=1)
    return rank < counts


def nm_mask(score: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Mask pruning the ``m − n`` lowest-scoring weights in every group of ``m`` consecutive columns."""
    rows, cols = score.shape
    if cols % m:
        raise ValueError(f"N:M pattern needs the input size ({cols}) to be a multiple of m={m}")
    grouped = score.reshape(rows, cols // m, m)
    mask = torch.zeros_like(grouped, dtype=torch.bool)
    mask.scatter_(2, torch.topk(grouped, m - n, dim=2, largest=False).indices, True)
    return mask.reshape(rows, cols)


def select(score: torch.Tensor, pattern: Pattern, per_row: bool = False) -> torch.Tensor:
    """Pruning mask from a score: N:M groups, per-row counts, or the lowest entries of the whole matrix."""
    if pattern.structured:
        return nm_mask(score, pattern.n, pattern.m)
    if per_row:
        return lowest_k_per_row(score, n_pruned(score.numel(), pattern.sparsity))
    return lowest_k(score, n_pruned(score.numel(), pattern.sparsity))


def is_nm(mask: torch.Tensor, n: int, m: int) -> bool:
    """True when every group of ``m`` consecutive columns of every row keeps exactly ``n`` weights."""
    rows, cols = mask.shape
    kept = (~mask).reshape(rows, cols // m, m).sum(dim=2)
    return bool((kept == n).all())
