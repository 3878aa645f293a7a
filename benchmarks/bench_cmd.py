# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Benchmark of the CMD builder (`cnnext.build_cmds`) on one CPU core.

Builds the default two-channel 64x64 CMDs of ``--cells`` sightlines from
``--stars`` random 2MASS-like stars (with ``ph_qual``/``cc_flg`` flags, upper
limits and NaN magnitudes), with the default quality cuts, and compares with the
naive approach: `numpy.histogram2d` called per cell and channel after
`~cnnext.quality.QualityCuts.apply`. Both results are checked to be identical.

Run as ``python benchmarks/bench_cmd.py [--stars N] [--cells N] [--repeat N]``.
Times are the best of ``--repeat`` runs, in CPU seconds of this process
(``time.process_time``, robust on a shared machine) and wall seconds.
"""

import os

# one core: no threaded BLAS/OpenMP anywhere (set before numpy is imported)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from astropy.table import Table  # noqa: E402

from cnnext.cmds import CMDSpec, build_cmds  # noqa: E402


def make_stars(n, n_cells, seed=0):
    """Random stars with 2MASS-like colours, errors and flags, sorted by cell."""
    rng = np.random.default_rng(seed)
    ks = np.round(rng.uniform(5.0, 16.5, n), 3)
    jk = np.round(rng.gamma(2.0, 0.45, n), 3)
    hk = np.round(0.35 * jk + rng.normal(0.0, 0.05, n), 3)
    j, h = ks + jk, ks + hk
    j[rng.random(n) < 0.02] = np.nan
    err = [np.where(rng.random(n) < 0.05, np.nan, 0.03) for _ in range(3)]
    ph = rng.choice(np.array(["AAA", "AAA", "AAB", "ABC", "UAA", "AAU", "CCD"]), n)
    cc = rng.choice(np.array(["000", "000", "000", "c00", "0d0"]), n)
    stars = Table({"J": j, "H": h, "Ks": ks, "e_J": err[0], "e_H": err[1], "e_Ks": err[2],
                   "ph_qual": ph, "cc_flg": cc})
    cells = np.sort(rng.integers(0, n_cells, n))
    return stars, cells


def naive_cmds(stars, cells, n_cells, spec):
    """numpy.histogram2d per cell and channel (the baseline)."""
    mags = spec.quality.apply(stars)
    order = np.argsort(cells, kind="stable")
    bounds = np.searchsorted(cells[order], np.arange(n_cells + 1))
    out = np.zeros((n_cells,) + spec.shape, dtype=np.float32)
    for c in range(n_cells):
        rows = order[bounds[c]:bounds[c + 1]]
        for k, ch in enumerate(spec.channels):
            row = ch.row_bands
            mag = mags[row[0]][rows] if len(row) == 1 else mags[row[0]][rows] - mags[row[1]][rows]
            colour = mags[ch.colour[0]][rows] - mags[ch.colour[1]][rows]
            hist, _, _ = np.histogram2d(mag, colour, bins=[spec.n_mag, spec.n_colour],
                                        range=[ch.mag_range, ch.colour_range])
            out[c, k] = spec.transform_counts(hist)
    return out


def best_of(func, repeat):
    cpu, wall, result = [], [], None
    for _ in range(repeat):
        t0, w0 = time.process_time(), time.perf_counter()
        result = func()
        cpu.append(time.process_time() - t0)
        wall.append(time.perf_counter() - w0)
    return min(cpu), min(wall), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stars", type=int, default=2_000_000)
    parser.add_argument("--cells", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    spec = CMDSpec()
    stars, cells = make_stars(args.stars, args.cells)
    shuffled = np.random.default_rng(1).permutation(args.stars)
    stars_shuffled, cells_shuffled = stars[shuffled], cells[shuffled]

    # (name, function, repeats, compared with the baseline)
    cases = [
        ("numpy.histogram2d per cell (baseline)",
         lambda: naive_cmds(stars, cells, args.cells, spec), max(1, args.repeat // 3), True),
        ("build_cmds, cells sorted (as sources return them)",
         lambda: build_cmds(stars, cells, args.cells, spec)[0], args.repeat, True),
        ("build_cmds, cells in random order",
         lambda: build_cmds(stars_shuffled, cells_shuffled, args.cells, spec)[0],
         args.repeat, True),
        ("build_cmds, sorted, no quality cuts (not compared)",
         lambda: build_cmds(stars, cells, args.cells, spec, apply_quality=False)[0],
         args.repeat, False),
    ]
    print(f"CMD building: {args.stars:,} stars, {args.cells:,} cells, "
          f"{spec.shape[0]} channels of {spec.n_mag}x{spec.n_colour}, one core "
          f"(best of {args.repeat}; baseline best of {max(1, args.repeat // 3)})")
    if hasattr(os, "getloadavg"):
        # shared machines: other processes' load slows memory-bound code down
        print(f"machine: {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.1f} at start")
    header = f"{'method':52s} {'CPU s':>8s} {'wall s':>8s} {'M stars/s (CPU)':>16s} " \
             f"{'speed-up':>9s}"
    print(header)
    print("-" * len(header))
    reference = base_cpu = None
    for name, func, repeat, compare in cases:
        cpu, wall, result = best_of(func, repeat)
        if reference is None:
            reference, base_cpu = result, cpu
        elif compare and not np.array_equal(result, reference):
            raise SystemExit(f"{name}: result differs from numpy.histogram2d")
        print(f"{name:52s} {cpu:8.3f} {wall:8.3f} {args.stars / cpu / 1e6:16.1f} "
              f"{base_cpu / cpu:8.1f}x")
    print("build_cmds results with quality cuts are identical to the baseline's")


if __name__ == "__main__":
    main()
