"""One shared look for every figure: colours per solver, rc settings, and saving to PNG + PDF."""

from __future__ import annotations

import contextlib
import zlib
from pathlib import Path
from typing import Iterable, Iterator

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 8.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}

#: Fixed colours for the baselines so a solver looks the same in every figure.
SOLVER_COLORS = {
    "iht": "#1f77b4", "niht": "#17becf", "htp": "#9467bd", "cosamp": "#ff7f0e", "sp": "#8c564b",
    "omp": "#e377c2", "basis_pursuit": "#2ca02c", "lasso": "#bcbd22", "topk_iobs": "#d62728",
    "iobs_exact": "#7f0000", "iobs_obs": "#ff9896", "stochastic_iht": "#aec7e8", "stochastic_iobs": "#f7b6d2",
    # tuned baselines (solvers/tuning.py): a darker shade of the default's hue, so both are told apart
    "iht_tuned": "#08306b", "htp_tuned": "#3f007d", "niht_tuned": "#00565e", "topk_iobs_tuned": "#67000d",
    # second-order solvers (solvers/newton_pursuit.py, newton_step.py, splicing.py)
    "nhtp": "#393b79", "gpnp": "#637939", "nsiht": "#e7ba52", "nshtp": "#7b4173", "splicing": "#000000",
}
#: Colours for solvers not listed above (a user's, added through hydra.searchpath): none of the fixed ones,
#: so a user solver never takes a baseline's colour.
_PALETTE = tuple(c for c in (*plt.get_cmap("Dark2").colors, *plt.get_cmap("tab20b").colors)
                 if matplotlib.colors.to_hex(c) not in set(SOLVER_COLORS.values()))

LABELS = {
    "iht": "IHT", "niht": "NIHT", "htp": "HTP", "cosamp": "CoSaMP", "sp": "SP", "omp": "OMP",
    "basis_pursuit": "basis pursuit", "lasso": "Lasso", "topk_iobs": "Topk-I-OBS", "iobs_exact": "I-OBS (exact)",
    "iobs_obs": "I-OBS (OBS-corrected)", "stochastic_iht": "stochastic IHT", "stochastic_iobs": "stochastic I-OBS",
    "iht_tuned": "IHT (tuned)", "htp_tuned": "HTP (tuned)", "niht_tuned": "NIHT (tuned)",
    "topk_iobs_tuned": "Topk-I-OBS (tuned)", "nhtp": "NHTP", "gpnp": "GPNP", "nsiht": "NSIHT", "nshtp": "NSHTP",
    "splicing": "splicing (abess)",
}


def solver_colors(names: Iterable[str]) -> dict[str, str | tuple[float, ...]]:
    """The colour of each solver drawn in one figure: the fixed one of a known solver; for an unknown (user)
    solver the palette colour at a hash of its name, or the next one free in this figure, so two user solvers
    never share a colour (while the palette lasts: 20 user solvers per figure)."""
    names = sorted(set(names))
    colors = {name: SOLVER_COLORS[name] for name in names if name in SOLVER_COLORS}
    taken: set[int] = set()
    for name in names:
        if name in colors:
            continue
        index = zlib.crc32(name.encode()) % len(_PALETTE)
        while index in taken and len(taken) < len(_PALETTE):
            index = (index + 1) % len(_PALETTE)
        taken.add(index)
        colors[name] = _PALETTE[index]
    return colors


def solver_color(name: str, among: Iterable[str] = ()) -> str | tuple[float, ...]:
    """The solver's colour in a figure that also draws the solvers ``among`` (`solver_colors`)."""
    return solver_colors([name, *among])[name]


def solver_label(name: str) -> str:
    return LABELS.get(name, name)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The project's rc settings, scoped (no global matplotlib state is changed)."""
    with plt.rc_context(RC):
        yield


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` and close the figure; returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.parent / f"{stem.name}.{kind}" for kind in ("png", "pdf")]  # stems may contain dots (0.5)
    for path in paths:
        fig.savefig(path, bbox_inches="tight", dpi=RC["savefig.dpi"])
    plt.close(fig)
    return paths
