"""Numerical kernels of Optimal-Brain-Surgeon pruning for one linear layer: SparseGPT and exact (OBC) OBS.

All kernels solve (approximately) the layer-wise sparse quadratic problem of OBC / SparseGPT / I-OBS (§2.5):

    min_Ŵ  ‖W X − Ŵ X‖²_F   s.t. Ŵ has the requested sparsity pattern,

whose Hessian w.r.t. each row is ``H = (2/N) X Xᵀ`` (shape ``d_in × d_in``, shared by every row). Shapes:
``W`` is ``(d_out, d_in)``; masks are boolean with ``True`` = pruned. Names follow the papers (``W``, ``H``,
``Hinv``, ``Err1``, ``Q1``), as sparsegpt.py does.

References
----------
Hassibi & Stork 1993 (OBS); Frantar & Alistarh 2022, "Optimal Brain Compression" (OBC);
Frantar & Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot", Alg. 1;
Wu et al. 2024, "The Iterative Optimal Brain Surgeon", Lemma 2 (multi-weight OBS update).
"""

from __future__ import annotations

import logging

import torch

from pruning.masks import Pattern, block_counts, lowest_k, nm_mask

log = logging.getLogger(__name__)

#: exact OBS keeps one d_in × d_in inverse per row; refuse layers beyond this many elements (rows·d_in²).
OBC_MAX_ELEMENTS = 1 << 27


def dampen(W: torch.Tensor, H: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT's conditioning: dead inputs (``H_jj = 0``) get ``H_jj = 1`` and ``W[:, j] = 0``, then
    ``H ← H + λI`` with ``λ = percdamp · mean(diag H)``. Returns new ``(W, H)``; inputs are not modified."""
    W, H = W.clone(), H.clone()
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    damp = percdamp * torch.mean(torch.diag(H))
    H.diagonal().add_(damp)
    return W, H


def hinv_cholesky(H: torch.Tensor) -> torch.Tensor:
    """Upper Cholesky factor ``U`` of ``H⁻¹`` (``H⁻¹ = UᵀU``).

    Row ``i`` of ``U`` divided by ``U_ii`` is row 0 of ``inv(H[i:, i:])`` divided by its (0, 0) entry, and
    ``U_ii² = [inv(H[i:, i:])]_00``: all the inverse-Hessian rows SparseGPT's column sweep needs (SparseGPT §3.3).
    If a factorisation fails (float32 round-off on a nearly singular ``H``), ``H`` is dampened by a further
    ``0.01·10^a·mean(diag H)`` (``a = 0, 1, 2``), with a warning.
    """
    for attempt in range(4):
        try:
            Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
            return torch.linalg.cholesky(Hinv, upper=True)
        except torch.linalg.LinAlgError:
            if attempt == 3:
                raise
            extra = 0.01 * 10 ** attempt * torch.mean(torch.diag(H))
            log.warning("Cholesky failed; adding %.3g to the diagonal of H", float(extra))
            H = H + extra * torch.eye(H.shape[0], dtype=H.dtype, device=H.device)
    raise AssertionError("unreachable")


def sparsegpt(W: torch.Tensor, H: torch.Tensor, pattern: Pattern, blocksize: int = 128,
              percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """SparseGPT (Frantar & Alistarh 2023, Alg. 1): column sweep with OBS updates and lazy batched updates.

    Notes
    -----
    Columns are processed left to right in blocks of ``blocksize``. Unstructured masks are chosen once per
    block over all rows by the OBS saliency ``w² / [H⁻¹]_jj²`` (``U_jj² = [inv(H_F)]_jj``), with exact counts
    from `block_counts`; N:M masks are chosen every ``m`` columns on the already-updated weights. For column
    ``j`` the error ``err = (w_j − q_j) / U_jj`` is spread over the later columns of the block,
    ``W[:, j:] −= err · U[j, j:]``, and over the later blocks at the end of the block (lazy batch update).

    Returns
    -------
    (W_pruned, mask) in ``H``'s dtype.
    """
    rows, cols = W.shape
    W, H = dampen(W.to(H.dtype), H, percdamp)
    Hinv = hinv_cholesky(H)
    mask = torch.zeros_like(W, dtype=torch.bool)
    counts = block_counts(rows, cols, pattern.sparsity, blocksize)
    for b, i1 in enumerate(range(0, cols, blocksize)):
        i2 = min(i1 + blocksize, cols)
        W1, Hinv1 = W[:, i1:i2].clone(), Hinv[i1:i2, i1:i2]
        d = torch.diag(Hinv1)
        mask1 = None if pattern.structured else lowest_k(W1 ** 2 / d ** 2, counts[b])
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        for i in range(i2 - i1):
            if pattern.structured and i % pattern.m == 0:
                group = W1[:, i:i + pattern.m] ** 2 / d[i:i + pattern.m] ** 2
                mask[:, i1 + i:i1 + i + pattern.m] = nm_mask(group, pattern.n, pattern.m)
            prune = mask[:, i1 + i] if mask1 is None else mask1[:, i]
            w = W1[:, i]
            q = torch.where(prune, torch.zeros_like(w), w)
            Q1[:, i] = q
            err1 = (w - q) / d[i]
            W1[:, i:] -= err1.unsqueeze(1) @ Hinv1[i, i:].unsqueeze(0)
            Err1[:, i] = err1
        if mask1 is not None:
            mask[:, i1:i2] = mask1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ Hinv[i1:i2, i2:]
    return W, mask


def sequential_obs_reference(W: torch.Tensor, H: torch.Tensor, pattern: Pattern,
                             percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """The greedy OBS procedure that SparseGPT with ``blocksize = 1`` implements, written out naively.

    Columns ``j = 0, 1, …`` are visited in order; ``F = {j, …, d−1}`` are the columns not yet frozen. In column
    ``j`` the ``k_j`` rows with the lowest saliency ``w_j² / [inv(H_FF)]_jj`` are pruned, each by the OBS update
    ``w_F −= w_j / [inv(H_FF)]_jj · inv(H_FF)[j, :]`` (Hassibi & Stork 1993), with an explicit inverse per
    column (O(d⁴) in total). Used only to test `sparsegpt` (unstructured patterns).
    """
    rows, cols = W.shape
    W, H = dampen(W.to(H.dtype), H, percdamp)
    mask = torch.zeros_like(W, dtype=torch.bool)
    for j, k in enumerate(block_counts(rows, cols, pattern.sparsity, 1)):
        HinvF = torch.linalg.inv(H[j:, j:])
        col = lowest_k(W[:, j] ** 2 / HinvF[0, 0], k)
        mask[:, j] = col
        coef = torch.where(col, W[:, j] / HinvF[0, 0], torch.zeros_like(W[:, j]))
        W[:, j:] -= coef.unsqueeze(1) * HinvF[0].unsqueeze(0)
        W[col, j] = 0.0
    return W, mask


def _obc_trace(W: torch.Tensor, Hinv: torch.Tensor, pattern: Pattern) -> tuple[torch.Tensor, torch.Tensor]:
    """OBC's greedy per-row pass, all rows at once: the pruning order and the loss increment of each step.

    Each step prunes, in every row, the remaining weight with the lowest saliency ``w_q² / [H⁻¹]_qq`` (N:M:
    among groups that still need pruning), applies the OBS update and removes ``q`` from the row's inverse by
    one step of Gaussian elimination ``H⁻¹ ← H⁻¹ − H⁻¹[:, q] H⁻¹[q, :] / [H⁻¹]_qq`` (OBC, Frantar & Alistarh
    2022, Alg. 1). The increment is ``w_q² / (2 [H⁻¹]_qq)``.
    """
    rows, cols = W.shape
    steps = int(round(cols * pattern.sparsity)) if pattern.structured else cols
    w, Hi = W.clone(), Hinv.expand(rows, cols, cols).clone()
    pruned = torch.zeros_like(w, dtype=torch.bool)
    r = torch.arange(rows, device=W.device)
    order = torch.empty(rows, steps, dtype=torch.long, device=W.device)
    loss = torch.empty(rows, steps, dtype=W.dtype, device=W.device)
    for step in range(steps):
        blocked = pruned
        if pattern.structured:
            full = pruned.view(rows, -1, pattern.m).sum(2, keepdim=True) >= pattern.m - pattern.n
            blocked = pruned | full.expand(-1, -1, pattern.m).reshape(rows, cols)
        score = torch.where(blocked, torch.inf, w ** 2 / Hi.diagonal(dim1=1, dim2=2).clamp_min(1e-30))
        q = score.argmin(1)
        order[:, step], loss[:, step] = q, score[r, q] / 2
        col, d = Hi[r, :, q], Hi[r, q, q]
        w -= (w[r, q] / d).unsqueeze(1) * col
        w[r, q] = 0.0
        Hi -= col.unsqueeze(2) * Hi[r, q, :].unsqueeze(1) / d.view(-1, 1, 1)
        pruned[r, q] = True
    return order, loss


def _obc_counts(loss: torch.Tensor, total: int) -> torch.Tensor:
    """Per-row prune counts minimising the summed greedy losses for ``total`` pruned weights (OBC's global
    selection): take the ``total`` smallest increments after making each row's increments non-decreasing."""
    inc = torch.cummax(loss, dim=1).values
    chosen = lowest_k(inc, total)
    return chosen.sum(1)


def obs_update(w: torch.Tensor, Hinv: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Multi-weight OBS for one row with pruned set ``S``: ``w ← w − H⁻¹[:, S] (H⁻¹[S, S])⁻¹ w_S``, i.e.
    ``(I − H⁻¹ H^S) w`` of I-OBS Lemma 2; equal to applying the greedy single-weight updates in turn."""
    if S.numel() == 0:
        return w.clone()
    out = w - Hinv[:, S] @ torch.linalg.solve(Hinv[S][:, S], w[S])
    out[S] = 0.0
    return out


def exact_obs(W: torch.Tensor, H: torch.Tensor, pattern: Pattern,
              percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact OBS in OBC's greedy per-row form: the reference solver for small layers.

    Unstructured patterns choose per-row counts globally from the greedy loss traces (`_obc_counts`); N:M
    patterns prune ``m − n`` weights per group greedily. The final weights apply the exact multi-weight OBS
    correction for each row's pruned set. Cost O(d_out · d_in³) time and O(d_out · d_in²) memory.
    """
    rows, cols = W.shape
    if rows * cols * cols > OBC_MAX_ELEMENTS:
        raise ValueError(f"exact OBS is for small layers; {rows}x{cols} needs {rows * cols * cols} > "
                         f"{OBC_MAX_ELEMENTS} inverse-Hessian entries")
    W, H = dampen(W.to(H.dtype), H, percdamp)
    Hinv = torch.linalg.inv(H)
    order, loss = _obc_trace(W, Hinv, pattern)
    counts = (torch.full((rows,), order.shape[1], device=W.device) if pattern.structured
              else _obc_counts(loss, int(round(rows * cols * pattern.sparsity))))
    mask = torch.zeros_like(W, dtype=torch.bool)
    for i in range(rows):
        S = order[i, :int(counts[i])]
        mask[i, S] = True
        W[i] = obs_update(W[i], Hinv, S)
    return W, mask


def quadratic_error(W0: torch.Tensor, W: torch.Tensor, H: torch.Tensor) -> float:
    """Relative layer-wise error ``tr((W0−W) H (W0−W)ᵀ) / tr(W0 H W0ᵀ)`` = ‖(W0−W)X‖² / ‖W0 X‖²."""
    D = (W0 - W).to(H.dtype)
    W0 = W0.to(H.dtype)
    num = torch.sum((D @ H) * D)
    den = torch.sum((W0 @ H) * W0).clamp_min(1e-30)
    return float(num / den)
