"""Every solver drawn in a figure has its own colour: the package's solvers, and a user's (hydra.searchpath)."""

import zlib

from plots.style import _PALETTE, SOLVER_COLORS, solver_color, solver_colors
from solvers import REGISTRY


def _colliding_user_names(count: int) -> list[str]:
    """``count`` user solver names whose hashes pick the same palette colour."""
    by_slot: dict[int, list[str]] = {}
    for i in range(10_000):
        name = f"my_solver_{i}"
        names = by_slot.setdefault(zlib.crc32(name.encode()) % len(_PALETTE), [])
        names.append(name)
        if len(names) == count:
            return names
    raise AssertionError("no collision found")


def test_every_registered_solver_has_its_own_fixed_colour():
    # other tests register throw-away solvers defined in tests/: only the package's own need a fixed colour
    package = {name for name, cls in REGISTRY.items() if cls.__module__.startswith("solvers.")}
    colors = solver_colors(package)
    assert package <= set(SOLVER_COLORS), "give a new package solver a fixed colour in plots/style.py"
    assert len({str(c) for c in colors.values()}) == len(colors)


def test_user_solvers_whose_hashes_collide_get_different_colours():
    users = _colliding_user_names(3)
    figure = [*users, "iht", "topk_iobs", "nhtp"]
    colors = solver_colors(figure)
    assert len({str(colors[name]) for name in figure}) == len(figure)
    assert not {str(colors[name]) for name in users} & {str(c) for c in SOLVER_COLORS.values()}
    # the colour of a solver does not depend on the order the figure lists its solvers in
    assert solver_color(users[1], reversed(figure)) == colors[users[1]]


def test_a_user_solver_keeps_its_hash_colour_when_nothing_collides():
    assert solver_color("my_solver_0") == _PALETTE[zlib.crc32(b"my_solver_0") % len(_PALETTE)]
