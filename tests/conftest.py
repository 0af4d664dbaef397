"""Shared fixtures: small seeded instances and an isolated CLI environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # in-process figure tests: files only, whatever the machine has

import solvers  # noqa: F401  (fills the registry)
from problems import make_compressed_sensing, make_least_squares

CONF = Path(__file__).resolve().parents[1] / "conf"


@pytest.fixture
def easy_cs():
    """Noiseless Gaussian compressed sensing well inside every greedy method's phase boundary."""
    return make_compressed_sensing(m=100, d=256, k_star=5, seed=0)


@pytest.fixture
def small_ls():
    """Tiny overdetermined least squares on which every registered solver applies (Newton-type included)."""
    return make_least_squares(n=30, d=12, k_star=3, kappa=5.0, seed=3)


class Cli:
    """Runs the real ``obsbench`` console script in a temporary folder with its own results/outputs roots."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.results = root / "results"
        self.outputs = root / "outputs"

    def __call__(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "OBSBENCH_RESULTS": str(self.results), "OBSBENCH_OUTPUTS": str(self.outputs),
                       "MPLBACKEND": "Agg", **env}
        environment.pop("HYDRA_FULL_ERROR", None)
        exe = Path(sys.executable).with_name("obsbench")
        return subprocess.run([str(exe), *args], cwd=self.root, env=environment, capture_output=True, text=True,
                              timeout=timeout)

    def parquet_files(self) -> list[Path]:
        return sorted(self.results.glob("*.parquet")) if self.results.is_dir() else []


@pytest.fixture
def cli(tmp_path) -> Cli:
    return Cli(tmp_path)


#: The README's user solver, a fixed-step IHT, as a module outside the package (`write_user_solver`).
USER_SOLVER = textwrap.dedent('''
    from solvers.base import IterativeSolver, State
    from solvers._kernels import hard_threshold

    class {cls}(IterativeSolver):
        """x <- T_k(x - eta grad f(x)) with a fixed step (the README's example)."""
        name = "{name}"
        references = ("a user",)

        def __init__(self, *, eta: float = 0.5, **common):
            super().__init__(**common)
            self.eta = eta

        def step(self, problem, state):
            return State(x=hard_threshold(state.x - self.eta * problem.gradient(state.x), self.k_),
                         step_size=self.eta)
''')


def write_user_solver(root: Path, cls: str = "MyIHT", name: str = "my_iht", extra: str = "") -> None:
    """The README's user solver in ``root/my_solvers.py`` (``root`` goes on PYTHONPATH; ``extra`` is appended to
    the module) and its config ``root/my_conf/solver/<name>.yaml`` (``hydra.searchpath=[file://root/my_conf]``)."""
    (root / "my_solvers.py").write_text(USER_SOLVER.format(cls=cls, name=name) + textwrap.dedent(extra))
    (root / "my_conf" / "solver").mkdir(parents=True, exist_ok=True)
    (root / "my_conf" / "solver" / f"{name}.yaml").write_text(
        f"_target_: my_solvers.{cls}\neta: 0.5\nk: null\nmax_iter: 500\ntol: 1.0e-10\ntime_budget: null\n"
        "divergence_factor: 1.0e+8\n")
