# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The built-in Galaxy model against 2MASS star counts, the solar neighbourhood and
the empirical dwarf sequence.

Prints four tables, the first two with a smooth extinction of 0.7 mag/kpc on
every sightline:

1. 2MASS PSC sources per deg² in nine reference fields against the model's stars
   detected (in any band) by the mock 2MASS observation;
2. log10 N(Ks < 14) per deg² against the 2MASS density zones by latitude, on the
   sightlines of `cnnext.synthetic.validation.ZONE_SIGHTLINES` plus the two
   Besançon-2003 reference numbers of the method notes ((90, +5): 1.1e4, (280, 0):
   1.7e4 deg⁻²);
3. the model's stars at the Sun by class (A, F, G, K, M dwarfs, red giants)
   against the solar-neighbourhood census (`SOLAR_NEIGHBOURHOOD`): the mix of
   stars, free of extinction;
4. the isochrones' main sequence against the empirical dwarf sequence
   (`DWARF_SEQUENCE`): J-H and H-Ks at the same absolute Ks.

Run::

    python benchmarks/bench_galaxy_counts.py [--seed 1]
"""

import argparse

import numpy as np

from cnnext.synthetic import (
    GalaxyModel,
    density_zone_counts,
    dwarf_sequence_colours,
    local_class_densities,
    reference_field_counts,
)
from cnnext.synthetic.validation import ZONE_SIGHTLINES


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    model = GalaxyModel()

    ref = reference_field_counts(model, seed=args.seed)
    print("2MASS PSC reference fields (sources/deg^2), model with 0.7 mag/kpc, "
          "mock 2MASS detection in any band")
    print(f"{'l':>7} {'b':>6} {'2MASS':>8} {'model':>8} {'ratio':>6}  within 30%")
    for row in ref:
        print(f"{row['l']:7.1f} {row['b']:6.1f} {row['twomass']:8.0f} {row['model']:8.0f} "
              f"{row['ratio']:6.2f}  {'yes' if abs(row['ratio'] - 1) <= 0.3 else 'NO'}")
    print(f"ratio range {ref['ratio'].min():.2f}-{ref['ratio'].max():.2f}, "
          f"median {np.median(ref['ratio']):.2f}")
    print()

    sightlines = tuple(ZONE_SIGHTLINES) + ((90.0, 5.0),)
    zones = density_zone_counts(model, seed=args.seed, sightlines=sightlines)
    besancon = {(90.0, 5.0): 1.1e4, (280.0, 0.0): 1.7e4}
    print("log10 N(Ks<14) per deg^2, model with 0.7 mag/kpc, against 2MASS zones")
    print(f"{'l':>7} {'b':>6} {'model':>7} {'zone':>11} {'inside':>7} {'BGM-2003':>9}")
    for row in zones:
        key = (float(row["l"]), float(row["b"]))
        bgm = f"{np.log10(besancon[key]):9.2f}" if key in besancon else f"{'':9}"
        print(f"{row['l']:7.1f} {row['b']:6.1f} {row['log_n']:7.2f} "
              f"{row['zone_low']:5.1f}-{row['zone_high']:<5.1f} "
              f"{'yes' if row['inside'] else 'NO':>7} {bgm}")
    print()

    print("stars at the Sun (pc^-3) by class against the solar-neighbourhood census")
    print(f"{'class':>6} {'kind':>11} {'model':>9} {'census':>16} {'ratio':>6} {'sigma':>6}")
    for row in local_class_densities(model):
        print(f"{row['class']:>6} {row['kind']:>11} {row['model']:9.2e} "
              f"{row['census']:8.2e}±{row['census_err']:.1e} {row['ratio']:6.2f} "
              f"{row['sigma']:+6.1f}")

    print()

    print("main sequence (solar metallicity, 2 Gyr) against the empirical dwarf "
          "sequence, at the same M_Ks")
    print(f"{'type':>5} {'M_Ks':>6} {'J-H':>6} {'model':>6} {'diff':>7} "
          f"{'H-Ks':>6} {'model':>6} {'diff':>7}")
    seq = dwarf_sequence_colours(model)
    for row in seq:
        print(f"{row['type']:>5} {row['M_Ks']:6.2f} {row['JH']:6.3f} {row['model_JH']:6.3f} "
              f"{row['d_JH']:+7.3f} {row['HKs']:6.3f} {row['model_HKs']:6.3f} "
              f"{row['d_HKs']:+7.3f}")
    fgk = np.array([t[0] in "FGK" and t != "K7V" for t in seq["type"]])
    print(f"F5-K5 dwarfs: model minus empirical J-H {np.median(seq['d_JH'][fgk]):+.3f}, "
          f"H-Ks {np.median(seq['d_HKs'][fgk]):+.3f} (medians)")


if __name__ == "__main__":
    main()
