"""Runtime scaling: the fitted exponent, per-iteration timing, and the experiment end to end."""

from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from experiments.store.results import load
from experiments.kinds.scaling import dimensions, fit_exponent, timings


def test_fit_exponent_recovers_a_power_law():
    d = np.array([64, 128, 256, 512, 1024])
    noise = np.exp(np.random.default_rng(0).normal(0, 0.05, d.size))
    slope, se = fit_exponent(d, 3e-7 * d**2.0 * noise)
    assert slope == pytest.approx(2.0, abs=3 * se) and 0 < se < 0.1
    assert fit_exponent(d, 1e-3 * d**1.5)[0] == pytest.approx(1.5)
    assert np.isnan(fit_exponent(np.array([64, 64]), np.array([1.0, 2.0]))[0])


def test_time_per_iteration_excludes_set_up_for_iterative_solvers():
    """Iterative run: row 0 holds the set-up time, so per iteration = (t_final − t_0)/iterations; a direct
    solver's single row gives t/iterations."""
    common = dict(problem="cs", p_m=16, p_d=32, p_k_star=2, seed=0, status="ok")
    frame = pd.DataFrame([dict(run_id="a", solver="iht", iteration=i, time_s=1.0 + 0.5 * i, **common)
                          for i in range(5)] + [dict(run_id="b", solver="basis_pursuit", iteration=10, time_s=2.0,
                                                     **common)])
    runs = timings(frame).set_index("run_id")
    assert runs.loc["a", "time_per_iteration"] == pytest.approx(0.5)
    assert runs.loc["a", "time_per_solve"] == pytest.approx(3.0)
    assert runs.loc["b", "time_per_iteration"] == pytest.approx(0.2)


def test_dimensions_are_validated():
    assert dimensions([64, 16, 32, 16]) == [16, 32, 64]
    for bad in ([16], [0, 16], 32):
        with pytest.raises(ValueError):
            dimensions(bad)


def test_scaling_end_to_end_figure_and_exponent_table(cli):
    done = cli("-m", "experiment=scaling", "solver=iht,cosamp", "experiment.dims=[16,32,64]", "experiment.repeats=1")
    assert done.returncode == 0, done.stderr
    assert len(cli.parquet_files()) == 6  # 2 solvers x 3 dimensions x 1 seed
    assert sorted(load(cli.results).groupby("run_id")["p_d"].first()) == [16, 16, 32, 32, 64, 64]
    sweep = next(cli.outputs.glob("multirun/*/*"))
    png = sweep / "scaling.png"
    assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").is_file()
    assert np.allclose(struct.unpack(">II", png.read_bytes()[16:24]), (1710, 683), rtol=0.15)  # 150 dpi
    table = pd.read_csv(sweep / "scaling.csv")
    assert set(table["solver"]) == {"iht", "cosamp"} and table["exponent_solve"].notna().all()
    assert "fitted exponents" in done.stdout
