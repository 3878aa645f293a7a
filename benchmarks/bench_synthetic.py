# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Speed of the synthetic-data pipeline (cnnext.synthetic).

Measures, for one 30' HEALPix cell (order 7, 0.21 deg²) at (l, b) = (280°, 0°):

1. loading the PARSEC grid and building the Galaxy model's tables (once per process);
2. sampling the cell's intrinsic stars down to Ks = 15.5 (goal < 1 s);
3. drawing random extinction profiles (per profile);
4. turning the cell into one reddened, observed CMD (goal < 2 ms): the batched
   hot path `observe_many` at several batch sizes, and `observe` + `build_cmds`;
5. `MockSky`: cells per second for a first query (sampling + observation) and for
   a repeated query (cached intrinsic stars);

then prints the model-vs-2MASS count table (see bench_galaxy_counts.py).

Times are the best of several repeats: wall clock and CPU time of this process
(single-threaded numpy; on a shared machine the CPU time is the fairer number).

Run::

    python benchmarks/bench_synthetic.py [--repeat 7]
"""

import argparse
import platform
import time

import numpy as np


def best(func, repeat):
    """Best wall time and best CPU time of this process over ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    from cnnext import build_cmds
    from cnnext.healpix import cell_area, lonlat_to_cells
    from cnnext.synthetic import (
        GalaxyModel,
        MockSky,
        observe,
        observe_many,
        random_profiles,
        reference_field_counts,
    )
    from cnnext.synthetic.isochrones import load_parsec_grid

    t0 = time.perf_counter()
    load_parsec_grid()
    t_grid = time.perf_counter() - t0
    model = GalaxyModel()
    t0 = time.perf_counter()
    model.sample(280.0, 0.0, 0.01, seed=0)
    t_tables = time.perf_counter() - t0
    area = cell_area(7)

    print(f"cnnext.synthetic benchmark — {platform.processor() or platform.machine()}, "
          f"numpy {np.__version__}")
    print(f"{'step':<58} {'wall':>10} {'CPU':>10}")
    print(f"{'PARSEC grid load (disk-cached after the first process)':<58} "
          f"{t_grid * 1e3:8.0f} ms")
    print(f"{'Galaxy model tables (once per parameter set)':<58} {t_tables * 1e3:8.0f} ms")

    stars = model.sample(280.0, 0.0, area, faint_limit=15.5, seed=1)
    b, m = best(lambda: model.sample(280.0, 0.0, area, faint_limit=15.5, seed=1), args.repeat)
    print(f"{f'sample one order-7 cell (280,0), Ks<=15.5: {len(stars)} stars':<58} "
          f"{b * 1e3:8.1f} ms {m * 1e3:8.1f} ms")

    b, m = best(lambda: random_profiles(256, l=280.0, b=0.0, seed=2), max(2, args.repeat // 2))
    print(f"{'random_profiles, per profile (batch 256)':<58} {b / 256 * 1e3:8.2f} ms "
          f"{m / 256 * 1e3:8.2f} ms")

    prof = random_profiles(256, l=280.0, b=0.0, seed=2)
    av = prof.at(np.asarray(stars["distance"]))
    observe_many(stars, av[:8], seed=3)
    for n in (1, 16, 64, 256):
        b, m = best(lambda n=n: observe_many(stars, av[:n], seed=3), args.repeat)
        print(f"{f'observe_many -> CMD, per CMD (batch {n})':<58} {b / n * 1e3:8.2f} ms "
              f"{m / n * 1e3:8.2f} ms")
    b, m = best(lambda: observe_many(stars, prof[:64], seed=3), args.repeat)
    print(f"{'observe_many incl. A_V at stars from profiles (batch 64)':<58} "
          f"{b / 64 * 1e3:8.2f} ms {m / 64 * 1e3:8.2f} ms")

    def slow():
        obs = observe(stars, prof[0], seed=3)
        build_cmds(obs, np.zeros(len(obs), dtype=np.int64), 1)

    b, m = best(slow, args.repeat)
    print(f"{'observe (table) + build_cmds, one CMD':<58} {b * 1e3:8.2f} ms {m * 1e3:8.2f} ms")

    sky = MockSky(seed=0, galaxy=model)
    lon, lat = np.meshgrid(np.arange(280.0, 290.0, 0.4), np.arange(-1.0, 1.0, 0.4))
    cells = np.unique(lonlat_to_cells(lon.ravel(), lat.ravel(), 7))
    sky.query_cells(cells[:1], 7)  # builds the dust field
    t0, c0 = time.perf_counter(), time.process_time()
    first = sky.query_cells(cells[1:], 7)
    t_first = (time.perf_counter() - t0) / (len(cells) - 1)
    c_first = (time.process_time() - c0) / (len(cells) - 1)
    b, m = best(lambda: sky.query_cells(cells[1:], 7), max(2, args.repeat // 3))
    print(f"{f'MockSky first query, per cell ({len(cells) - 1} cells)':<58} "
          f"{t_first * 1e3:8.1f} ms {c_first * 1e3:8.1f} ms")
    print(f"{'MockSky repeated query (cached stars), per cell':<58} "
          f"{b / (len(cells) - 1) * 1e3:8.1f} ms {m / (len(cells) - 1) * 1e3:8.1f} ms")
    print(f"  ({len(first) / (len(cells) - 1):.0f} observed stars per cell)")
    print()

    ref = reference_field_counts(model, seed=1)
    print("model vs 2MASS PSC counts (sources/deg^2, 0.7 mag/kpc)")
    print(f"{'l':>7} {'b':>6} {'2MASS':>8} {'model':>8} {'ratio':>6}")
    for row in ref:
        print(f"{row['l']:7.1f} {row['b']:6.1f} {row['twomass']:8.0f} {row['model']:8.0f} "
              f"{row['ratio']:6.2f}")


if __name__ == "__main__":
    main()
