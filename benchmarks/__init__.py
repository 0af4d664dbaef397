"""Performance benchmarks of obsbench against the hardware floor and against peer implementations.

Run them all with ``make bench`` (or ``python -m benchmarks.run``); every figure is a ratio measured side by
side in one run on one machine, written to ``benchmarks/results/benchmarks.csv`` and ``benchmarks.md``. One
module per group of targets (issue 7):

- `benchmarks.blas_floor`: one iteration of IHT / NIHT / HTP / CoSaMP against ``A @ x`` + ``A.T @ r``.
- `benchmarks.peers`: OMP against scikit-learn, IHT / HTP / CoSaMP against skscope and abess.
- `benchmarks.iobs_cost`: Topk-I-OBS factorisations per run and time per iteration against d.
- `benchmarks.l1_fast_path`: basis pursuit by HiGHS and the Lasso by LARS against cvxpy.
- `benchmarks.phase_budget`: full-size phase diagrams through the ``obsbench`` command line.
- `benchmarks.parallel`: a 16-job sweep with the joblib launcher against the serial launcher.
- `benchmarks.scaling`: time per solve against d for every solver, with the fitted exponent.

Benchmarks are never timed assertions in tests; ``tests/test_benchmarks.py`` only runs them in smoke mode.
"""
