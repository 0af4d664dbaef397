"""Algorithm-selection maps (issue #18): the fastest configuration with success >= 50% per phase-diagram cell."""

import numpy as np
import pandas as pd

from experiments.analysis.donoho_tanner import weak_threshold_curve
from experiments.analysis.selection import selection_table
from plots.phase import selection_map_figure


def trials(group, solver, delta, rho, successes, times):
    """Final rows of one configuration's trials in one cell."""
    return pd.DataFrame(dict(group=group, solver=solver, p_delta=delta, p_rho=rho, success=successes,
                             time_s=times))


def frame():
    return pd.concat([
        # cell (0.5, 0.2): both qualify, cosamp's successes are faster; iht's failures are fastest of all and
        # must not count
        trials("iht", "iht", 0.5, 0.2, [True, True, True, False], [4.0, 5.0, 6.0, 0.01]),
        trials("cosamp", "cosamp", 0.5, 0.2, [True, True, False, False], [1.0, 3.0, 9.0, 9.0]),
        # cell (0.5, 0.6): only iht qualifies (cosamp at 25%)
        trials("iht", "iht", 0.5, 0.6, [True, True, False, False], [2.0, 2.0, 1.0, 1.0]),
        trials("cosamp", "cosamp", 0.5, 0.6, [True, False, False, False], [0.1, 1.0, 1.0, 1.0]),
        # cell (0.9, 0.6): nothing qualifies
        trials("iht", "iht", 0.9, 0.6, [False] * 4, [1.0] * 4),
        trials("cosamp", "cosamp", 0.9, 0.6, [True, False, False, False], [1.0] * 4),
        # cell (0.9, 0.2): a close call (medians 1.0 and 1.1)
        trials("iht", "iht", 0.9, 0.2, [True] * 4, [1.1] * 4),
        trials("cosamp", "cosamp", 0.9, 0.2, [True] * 4, [1.0] * 4),
    ], ignore_index=True)


def test_the_winner_is_the_fastest_on_successful_trials_among_those_that_succeed_half_the_time():
    table = selection_table(frame()).set_index(["delta", "rho"])
    assert table.loc[(0.5, 0.2), "winner"] == "cosamp"
    assert table.loc[(0.5, 0.2), "median_success_time_s"] == 2.0  # median of its successes (1, 3)
    assert table.loc[(0.5, 0.2), "runner_up"] == "iht" and table.loc[(0.5, 0.2), "time_ratio"] == 2.5
    assert not table.loc[(0.5, 0.2), "close_call"]
    assert table.loc[(0.5, 0.6), "winner"] == "iht" and table.loc[(0.5, 0.6), "candidates"] == 1
    assert np.isnan(table.loc[(0.5, 0.6), "time_ratio"])
    assert pd.isna(table.loc[(0.9, 0.6), "winner"]) and table.loc[(0.9, 0.6), "candidates"] == 0
    assert table.loc[(0.9, 0.2), "winner"] == "cosamp" and table.loc[(0.9, 0.2), "close_call"]


def test_the_map_draws_every_cell_and_curve(tmp_path):
    curves = pd.DataFrame(dict(group=["iht", "iht", "cosamp", "cosamp"], solver=["iht", "iht", "cosamp", "cosamp"],
                               delta_actual=[0.5, 0.9, 0.5, 0.9], rho50=[0.5, 0.4, 0.3, np.nan]))
    figure = selection_map_figure(selection_table(frame()), curves, weak_threshold_curve(), rule="test")
    labels = figure.legends[0].get_texts()
    assert {t.get_text() for t in labels} >= {"fastest: IHT", "fastest: CoSaMP", "IHT: 50% success"}
    figure.savefig(tmp_path / "map.png")


def test_the_map_keeps_a_delta_column_and_a_rho_row_where_nothing_qualifies(tmp_path):
    # a 3 x 3 grid whose last δ column and last ρ row have no winner: the map must still have 3 x 3 cells (the
    # pilot sweep of benchmarks/phase_scale.py, 10 x 10, failed with an IndexError before)
    rows = [trials("iht", "iht", delta, rho, [delta < 0.9 and rho < 0.6] * 2, [1.0, 1.0])
            for delta in (0.2, 0.5, 0.9) for rho in (0.1, 0.3, 0.6)]
    selection = selection_table(pd.concat(rows, ignore_index=True))
    curves = pd.DataFrame(dict(group=["iht"] * 3, solver=["iht"] * 3, delta_actual=[0.2, 0.5, 0.9],
                               rho50=[0.45, 0.45, np.nan]))
    figure = selection_map_figure(selection, curves, weak_threshold_curve(), rule="test")
    mesh = figure.axes[0].collections[0]
    assert mesh.get_array().shape == (3, 3) and np.ma.count_masked(mesh.get_array()) == 5
    figure.savefig(tmp_path / "map.png")


def test_a_sweep_over_solvers_writes_the_selection_table_and_map(cli):
    done = cli("-m", "experiment=phase_transition", "solver=iht,cosamp", "problem.d=24", "experiment.deltas=[0.5,0.9]",
               "experiment.rhos=[0.1,0.3]", "experiment.trials=2", "experiment.progress=false",
               "experiment.n_jobs=1")
    assert done.returncode == 0, done.stderr
    sweep = next(cli.outputs.glob("multirun/*/*"))
    table = pd.read_csv(sweep / "selection.csv")
    assert len(table) == 4 and set(table["winner"].dropna()) <= {"iht", "cosamp"}
    assert table["winner"].notna().any()  # the easiest cell (delta 0.9, rho 0.1) is recovered by both
    assert (sweep / "selection_map.png").stat().st_size > 10_000
