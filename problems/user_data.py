"""Least-squares problems from the user's own files: ``.npz``, a folder of ``.npy`` files, or MATLAB ``.mat``.

    obsbench problem=from_file problem.path=data/instance.npz solver=cosamp

The file holds ``A`` (m×d) and ``y`` (m,), and optionally ``x_star`` (d,). Without ``x_star`` the error
columns of the results are NaN (the truth is unknown) and ``k_star`` must be given as the sparsity budget.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from problems.base import LeastSquaresProblem

ARRAY_NAMES = ("A", "y", "x_star")


def _read_arrays(path: Path) -> dict[str, Any]:
    """The arrays named A, y, x_star found in ``path`` (missing ones are absent from the dict); a file its
    reader cannot parse raises a one-line ``ValueError`` saying what to do."""
    if path.is_dir():
        arrays = {}
        for name in ARRAY_NAMES:
            if (path / f"{name}.npy").is_file():
                try:
                    arrays[name] = np.load(path / f"{name}.npy", allow_pickle=False)
                except (OSError, ValueError, EOFError) as exc:
                    raise ValueError(f"{name}.npy is not a readable .npy file ({_reason(exc)}); "
                                     "write it with numpy.save") from None
        return arrays
    suffix = path.suffix.lower()
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in ARRAY_NAMES if name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as exc:
            raise ValueError(f"not a readable .npz file ({_reason(exc)}); write it with numpy.savez(path, A=A, y=y)") \
                from None
    if suffix == ".mat":
        import scipy.io

        try:
            data = scipy.io.loadmat(path)
        except NotImplementedError:  # scipy reads MATLAB files up to v7; v7.3 files are HDF5
            raise ValueError("a MATLAB v7.3 (HDF5) file, which scipy cannot read; save it with "
                             "save(file, 'A', 'y', '-v7') or convert it to .npz") from None
        except Exception as exc:  # MatReadError (not a ValueError), ValueError, struct errors of a damaged file
            raise ValueError(f"not a readable MATLAB file ({_reason(exc)}); save A, y[, x_star] with "
                             "MATLAB's save(file, 'A', 'y', '-v7') or numpy.savez to .npz") from None
        return {name: data[name] for name in ARRAY_NAMES if name in data}
    raise ValueError(f"unsupported file type {suffix!r}; use .npz, .mat or a folder of A.npy, y.npy[, x_star.npy]")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    return text.rstrip(".") or type(exc).__name__


def _as_float(name: str, value: Any, ndim: int) -> np.ndarray:
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(float)
    if ndim == 1 and array.ndim == 2 and 1 in array.shape:  # MATLAB stores vectors as m×1 matrices
        array = array.ravel()
    if array.ndim != ndim or array.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or inf values")
    return array


def make_from_file(path: str, k_star: int | None = None, seed: int = 0, name: str = "from_file") -> LeastSquaresProblem:
    """Load ``A``, ``y`` (and ``x_star`` if present) from ``path``.

    Parameters
    ----------
    path : str
        A ``.npz`` or ``.mat`` file, or a folder holding ``A.npy``, ``y.npy`` and optionally ``x_star.npy``.
    k_star : int, optional
        Sparsity of the target; defaults to the number of nonzeros of ``x_star`` and is required without it.
    seed : int
        Unused (the instance is the file); kept so every problem takes the same arguments.

    Raises
    ------
    ValueError
        One line starting with ``problem from_file (<path>):`` for a missing, malformed, mismatched, empty or
        non-finite input.
    """
    if path in (None, "", "???"):  # "???": the config's mandatory value, left unset
        raise ValueError("problem.path is required: give problem.path=<.npz, .mat or a folder of .npy files>")
    try:
        return _load(Path(path).expanduser(), k_star, seed, name)
    except (ValueError, OSError, KeyError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"problem from_file ({path}): {detail}") from None


def _load(path: Path, k_star: int | None, seed: int, name: str) -> LeastSquaresProblem:
    if not path.exists():
        raise ValueError("no such file or folder")
    arrays = _read_arrays(path)
    missing = [n for n in ("A", "y") if n not in arrays]
    if missing:
        raise ValueError(f"missing array(s) {', '.join(missing)}; expected A, y and optionally x_star")
    A, y = _as_float("A", arrays["A"], 2), _as_float("y", arrays["y"], 1)
    if "x_star" in arrays:
        x_star = _as_float("x_star", arrays["x_star"], 1)
        k_star = int(np.count_nonzero(x_star)) if k_star is None else k_star
    else:
        if k_star is None:
            raise ValueError("k_star is required when the file has no x_star")
        x_star = np.full(A.shape[1], np.nan)
    if not isinstance(k_star, (int, np.integer)) or not 1 <= k_star <= A.shape[1]:
        raise ValueError(f"k_star={k_star} must be an integer in [1, d={A.shape[1]}]")
    params = dict(path=str(path), k_star=k_star)
    return LeastSquaresProblem(name=name, params=params, seed=seed, x_star=x_star, k_star=int(k_star),
                               A=A, y=y)
