"""A small Vision Transformer on scikit-learn's 8×8 digits: the offline stand-in for DeiT.

Each 8×8 image is cut into 4×4 patches (4 tokens of 16 pixels) plus a class token; the blocks are pre-norm
DeiT/timm blocks (``attn.qkv``, ``attn.proj``, ``mlp.fc1``, ``mlp.fc2`` are the prunable layers, as in the
paper's "query, key, value, projection and fully-connected layers"). Training is seeded and deterministic on
CPU and the weights are cached under `cache_dir` keyed by the configuration, so it runs once per machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from pruning import data

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """``$OBSBENCH_CACHE`` or ``~/.cache/obsbench``: trained models and unpacked model archives."""
    return Path(os.environ.get("OBSBENCH_CACHE", Path.home() / ".cache" / "obsbench"))


@dataclass(frozen=True)
class ViTConfig:
    """Architecture and training recipe of the digits ViT (the defaults train in well under a minute on CPU)."""

    patch: int = 4
    dim: int = 32
    depth: int = 4
    heads: int = 4
    mlp: int = 64
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.05
    seed: int = 0

    def key(self) -> str:
        """Short stable hash of the configuration (the cache file name)."""
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection (timm naming)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), Mlp(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DigitsViT(nn.Module):
    """ViT for ``(B, 1, 8, 8)`` images: patch embedding, class token, learned positions, blocks, linear head."""

    def __init__(self, cfg: ViTConfig, image_size: int = 8, n_classes: int = 10) -> None:
        super().__init__()
        self.patch = cfg.patch
        n_tokens = (image_size // cfg.patch) ** 2 + 1
        self.patch_embed = nn.Linear(cfg.patch ** 2, cfg.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, n_tokens, cfg.dim))
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp) for _ in range(cfg.depth))
        self.norm, self.head = nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, n_classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        B, p = pixel_values.shape[0], self.patch
        patches = F.unfold(pixel_values, kernel_size=p, stride=p).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(B, -1, -1), self.patch_embed(patches)], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, 0]))


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run tiny-tensor training on one intra-op thread (much faster than 2 threads on a busy 2-core machine,
    and bit-for-bit reproducible); the previous thread count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train(cfg: ViTConfig, x: torch.Tensor, y: torch.Tensor) -> DigitsViT:
    """AdamW with a one-cycle learning-rate schedule, no augmentation, seeded; returns the model in eval mode."""
    with _single_thread():
        return _train(cfg, x, y)


def _train(cfg: ViTConfig, x: torch.Tensor, y: torch.Tensor) -> DigitsViT:
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    model = DigitsViT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(y) + cfg.batch_size - 1) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    model.train()
    for _ in range(cfg.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(cfg.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


def load_or_train(cfg: ViTConfig = ViTConfig(), cache: Path | None = None) -> DigitsViT:
    """The trained digits ViT for ``cfg``: from ``cache/vit-digits-<key>.pt`` or trained now and saved there
    (atomically: temporary file + rename)."""
    path = (cache or cache_dir()) / f"vit-digits-{cfg.key()}.pt"
    model = DigitsViT(cfg)
    if path.exists():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    tick = time.perf_counter()
    x, y, _, _ = data.digits(seed=cfg.seed)
    model = train(cfg, x, y)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    log.info("trained digits ViT %s in %.1f s, cached at %s", cfg.key(), time.perf_counter() - tick, path)
    return model
