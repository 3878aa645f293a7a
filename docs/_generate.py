# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Build-time content of the documentation: everything that comes from running cnnext.

``conf.py`` calls `prepare` once per build. It runs ``cnnext demo`` (cached per model
and cnnext source, so only the first build after a change pays its ~20 s) and writes
reStructuredText fragments into ``docs/_generated/`` (ignored by git), which the pages
include:

- ``landing_example.inc``: the landing page's query of the demo map, run here, with
  the value it prints;
- ``demo_report.inc``: the error table ``cnnext demo`` prints;
- ``cli.inc``: the command-line reference, from the argparse parsers;
- ``model_card_*.inc``: the shipped model's description and held-out metrics, from
  the metadata inside its ONNX file.

`substitutions` returns the ``|name|`` substitutions for numbers quoted on several
pages (cell size, demo size, ring artefact), so each comes from one place.
"""

import argparse
import contextlib
import hashlib
import importlib
import io
import json
import logging
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np

__all__ = ["prepare", "substitutions", "demo_dir", "ring_statistics"]

_STATE = {}

# the landing page's example: a point of the demo map inside the training region
EXAMPLE = (288.0, 0.5, 2.5)


def _source_hash():
    """Hash of the shipped model and cnnext's code: the demo is rerun when either changes."""
    import cnnext
    from cnnext.model import default_model_path

    h = hashlib.sha256()
    h.update(default_model_path().read_bytes())
    root = Path(cnnext.__file__).parent
    for path in sorted(root.rglob("*.py")):
        if "tests" not in path.parts:
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def demo_dir():
    """The directory holding ``cnnext-demo/`` (the plot directives' working directory)."""
    return _STATE["cache"]


def _run_demo(cache):
    """Run ``cnnext demo`` into ``cache/cnnext-demo`` unless it is up to date."""
    from cnnext.demo import format_report, run_demo

    stamp = cache / "cnnext-demo" / "stamp.json"
    key = _source_hash()
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return json.loads(stamp.read_text())
    logging.getLogger("cnnext").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_demo(cache / "cnnext-demo")
    report = format_report(result)
    info = {"key": key, "report": report, "seconds": result.seconds,
            "region": result.region}
    stamp.write_text(json.dumps(info))
    return info


def prepare(docs):
    """Run the demo if needed and write every generated fragment; return the cache dir."""
    docs = Path(docs)
    cache = docs / "_build" / "figure-cache"
    cache.mkdir(parents=True, exist_ok=True)
    out = docs / "_generated"
    out.mkdir(exist_ok=True)
    (out / ".gitignore").write_text("*\n")
    _STATE["cache"] = cache
    _STATE["demo"] = _run_demo(cache)
    _write(out / "landing_example.inc", _landing_example(cache))
    _write(out / "demo_report.inc", _demo_report(_STATE["demo"]))
    _write(out / "cli.inc", cli_reference())
    for name, text in _model_card().items():
        _write(out / f"model_card_{name}.inc", text)
    _write(out / "model_card_demo_errors.inc", _demo_errors())
    return cache


def _write(path, text):
    # unchanged files keep their time stamp, so Sphinx does not rebuild their pages
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


# --- landing page ---------------------------------------------------------------------

def _run_session(lines, cwd):
    """Run doctest-style ``lines`` in ``cwd`` like the interactive interpreter; return
    the transcript (``>>>`` lines and their output)."""
    import os

    namespace = {}
    out = []
    old = Path.cwd()
    os.chdir(cwd)
    try:
        for line in lines:
            code = line.split("  #")[0]
            buf = io.StringIO()
            with contextlib.redirect_stdout(buf), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(code, "<docs>", "single"), namespace)
            out.append(f">>> {line}")
            out.extend(buf.getvalue().rstrip("\n").splitlines())
    finally:
        os.chdir(old)
    return out, namespace


def _landing_example(cache):
    lon, lat, dist = EXAMPLE
    lines = [
        "from cnnext import CNNExtinctionMap",
        'm = CNNExtinctionMap(map_fname="cnnext-demo/demo-map.fits")  # made by cnnext demo',
        f"a_v, sigma = m.query_gal({lon}, {lat}, d={dist}, return_sigma=True)"
        "  # l, b in deg, d in kpc",
        'print(f"A_V = {a_v:.2f} ± {sigma:.2f} mag")',
    ]
    transcript, ns = _run_session(lines, cache)
    from cnnext.healpix import lonlat_to_cells
    from cnnext.synthetic import MockSky

    m = ns["m"]
    cell = lonlat_to_cells(lon, lat, m.profile_map.order)
    truth = MockSky(seed=2022, order=m.profile_map.order).true_profile(
        np.atleast_1d(cell), m.profile_map.order).nodes(np.array([dist]))
    truth = float(np.ravel(truth)[0])
    _STATE["example_truth"] = truth
    _STATE["example_value"] = float(ns["a_v"])
    _STATE["example_sigma"] = float(ns["sigma"])
    body = textwrap.indent("\n".join(transcript), "   ")
    return (".. code-block:: pycon\n\n"
            f"{body}\n\n"
            f"The mock sky's true extinction to that point is A_V = {truth:.2f} mag.\n")


# --- getting started --------------------------------------------------------------------

def _demo_report(info):
    report = info["report"].splitlines()
    # the table only: from the heading to the line before the file list
    start = next(i for i, s in enumerate(report) if s.startswith("Errors of"))
    stop = next(i for i, s in enumerate(report) if s.strip().startswith("error table"))
    body = textwrap.indent("\n".join(report[start:stop]).rstrip(), "    ")
    return f".. code-block:: text\n\n{body}\n"


def ring_statistics(pm=None, truth=None):
    """
    Where the demo map's profiles make their biggest step.

    Returns the share of predicted cells whose largest 100 pc increment of A_V falls in
    the most common distance bin, that bin (kpc), and the same share for the truth.
    """
    if pm is None:
        from cnnext import read_map
        from cnnext.synthetic import MockSky

        pm = read_map(demo_dir() / "cnnext-demo" / "demo-map.fits")
        sky = MockSky(seed=2022, order=pm.order)
        truth = np.asarray(sky.true_profile(pm.cells, pm.order).nodes(pm.distances))
    ok = np.isfinite(pm.av).all(axis=1)
    d = pm.distances

    def share(av):
        step = np.argmax(np.diff(av[ok], axis=1), axis=1) + 1
        counts = np.bincount(step, minlength=d.size)
        k = int(np.argmax(counts))
        return counts[k] / step.size, k

    s_pred, k = share(np.asarray(pm.av))
    s_true, _ = share(np.asarray(truth))
    return {"share": s_pred, "bin": (float(d[k - 1]), float(d[k])), "truth_share": s_true}


def _demo_numbers():
    """Numbers of the demo quoted in the text: cells, coverage, ring artefact."""
    if "demo_numbers" in _STATE:
        return _STATE["demo_numbers"]
    import astropy.units as u
    from astropy.table import QTable

    metrics = QTable.read(demo_dir() / "cnnext-demo" / "metrics.ecsv")
    cov = {float(r["distance"].to_value(u.kpc)): float(r["coverage68"]) for r in metrics}
    rings = ring_statistics()
    near = [v for k, v in cov.items() if k <= 6]
    nums = {
        "n_cells": int(metrics.meta["n_cells"]),
        "cov_lo": min(near), "cov_hi": max(near), "cov_8": cov.get(8.0, math.nan),
        "ring_share": rings["share"], "ring_bin": rings["bin"],
        "ring_truth": rings["truth_share"],
        "seconds": _STATE["demo"]["seconds"],
    }
    _STATE["demo_numbers"] = nums
    return nums


def substitutions():
    """The ``rst_epilog`` defining ``|name|`` substitutions used across pages."""
    from cnnext.healpix import cell_area, cell_size
    from cnnext.model import CNNModel

    md = CNNModel().metadata
    order = md.healpix_order
    nums = _demo_numbers()
    bounds = md.training["region"]["bounds"]
    lo, hi = bounds["l"]
    b = max(abs(v) for v in bounds["b"])
    import os

    model = CNNModel()
    params = sum(m.get("network", {}).get("parameters", 0)
                 for m in _members(md.training))
    subs = {
        "model_name": Path(model.path).name,
        "model_weights": f"{params / 1e6:.1f} M",
        "model_mb": f"{os.path.getsize(model.path) / 1e6:.1f} MB",
        "cov_inside": f"{100 * md.metrics['inside']['coverage68']:.1f} %",
        "cov_outside": f"{100 * md.metrics['outside']['coverage68']:.1f} %",
        "cell_size": f"{cell_size(order):.1f}′",
        "cell_area": f"{cell_area(order):.2f} deg²",
        "order": f"{order}",
        "nside": f"{1 << order}",
        "region": f"l = {lo:g}–{hi:g}°, \\|b\\| ≤ {b:g}°",
        "n_train_sightlines": f"{len(md.training['sightlines'])}",
        "demo_cells": f"{nums['n_cells']}",
        "demo_seconds": f"{5 * math.ceil(nums['seconds'] / 5):.0f}",
        "demo_cov": f"{100 * nums['cov_lo']:.0f}–{100 * nums['cov_hi']:.0f} %",
        "demo_cov8": f"{100 * nums['cov_8']:.0f} %",
        "ring_share": f"{100 * nums['ring_share']:.0f} %",
        "ring_bin": f"{nums['ring_bin'][0]:.1f}–{nums['ring_bin'][1]:.1f} kpc",
        "ring_truth": f"{100 * nums['ring_truth']:.0f} %",
        "ex_value": f"{_STATE['example_value']:.2f}",
        "ex_truth": f"{_STATE['example_truth']:.2f}",
    }
    return "\n".join(f".. |{k}| replace:: {v}" for k, v in subs.items()) + "\n"


def _demo_errors():
    """Distribution of the demo map's errors: is the RMS driven by a few sightlines?"""
    from cnnext import read_map
    from cnnext.synthetic import MockSky

    pm = read_map(demo_dir() / "cnnext-demo" / "demo-map.fits")
    truth = np.asarray(MockSky(seed=2022, order=pm.order).true_profile(
        pm.cells, pm.order).nodes(pm.distances))
    ok = np.isfinite(pm.av).all(axis=1)
    rows = []
    for dist in (1.0, 2.0, 4.0, 6.0, 8.0):
        k = int(np.argmin(np.abs(pm.distances - dist)))
        err = np.abs(pm.av[ok, k] - truth[ok, k])
        sq = np.sort(err ** 2)[::-1]
        # fewest sightlines that hold half of the squared error
        half = int(np.searchsorted(np.cumsum(sq), 0.5 * sq.sum()) + 1)
        p50, p90, p99 = np.percentile(err, [50, 90, 99])
        rows.append([f"{dist:g} kpc", f"{np.sqrt(np.mean(err ** 2)):.2f}", f"{p50:.2f}",
                     f"{p90:.2f}", f"{p99:.2f}", f"{err.max():.2f}",
                     f"{half} of {err.size} ({100 * half / err.size:.0f} %)"])
    header = ["distance", "RMS", "median", "90th pct", "99th pct", "max",
              "sightlines holding half the squared error"]
    return _list_table(header, rows, widths=[10, 9, 9, 9, 9, 9, 30])


# --- command-line reference -------------------------------------------------------------

def _parsers():
    from cnnext.cli import SUBCOMMANDS, _parser

    main, _ = _parser()
    yield "cnnext", main, None
    for name, (module, help_) in SUBCOMMANDS.items():
        parser = argparse.ArgumentParser(prog=f"cnnext {name}", description=help_)
        mod = importlib.import_module(module)
        mod.add_arguments(parser)
        yield name, parser, mod


def _option_text(action):
    if action.option_strings:
        metavar = ""
        if action.nargs != 0:
            mv = action.metavar or (
                "{" + ",".join(map(str, action.choices)) + "}" if action.choices
                else action.dest.upper())
            if isinstance(mv, tuple):
                mv = " ".join(mv)
            metavar = f" {mv}"
        return ", ".join(f"{o}{metavar}" for o in action.option_strings)
    return action.metavar or action.dest


def cli_reference():
    """reStructuredText of every ``cnnext`` subcommand and option, from the parsers."""
    out = []
    for name, parser, mod in _parsers():
        prog = parser.prog
        if mod is not None:
            title = f"``{prog}``"
            out += [f".. _cli-{name}:", "", title, "-" * len(title), ""]
            doc = (mod.__doc__ or "").strip().splitlines()
            summary = doc[0] if doc else ""
            if ":" in summary and summary.startswith("``"):
                summary = summary.split(":", 1)[1].strip()
            out += [summary[:1].upper() + summary[1:] if summary else parser.description, ""]
        usage = parser.format_usage().strip()
        out += [".. code-block:: text", "", textwrap.indent(usage, "    "), ""]
        if mod is None:
            out += ["``cnnext COMMAND --help`` prints the options of a command; "
                    "``cnnext -v COMMAND`` logs progress details.", ""]
        out += [f".. program:: {prog}", ""]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            help_ = (action.help or "").replace("%(default)s", str(action.default))
            help_ = _rst_text(help_)
            out += [f".. option:: {_option_text(action)}", ""]
            if help_:
                end = "" if help_.endswith((".", ")")) else "."
                out += [textwrap.indent(help_ + end, "   "), ""]
    return "\n".join(out) + "\n"


def _rst_text(text):
    """Plain text made safe for reStructuredText (no substitutions, emphasis, roles)."""
    return text.replace("*", "\\*").replace("|", "\\|").replace("`", "``")


# --- model card -------------------------------------------------------------------------

def _fmt_pm(x, digits=2):
    return f"{x:+.{digits}f}"


def _list_table(header, rows, widths=None, stub=1):
    lines = [".. list-table::", f"   :header-rows: {0 if header is None else 1}",
             f"   :stub-columns: {stub}"]
    if widths:
        lines.append(f"   :widths: {' '.join(map(str, widths))}")
    lines.append("   :class: cnnext-table")
    lines.append("")
    for row in ([] if header is None else [header]) + rows:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {c}" for c in row[1:]]
    return "\n".join(lines) + "\n"


def _per_distance(value):
    """Whether a metadata metric is a ``{"<distance>": number}`` dict."""
    if not isinstance(value, dict) or not value:
        return False
    try:
        [float(k) for k in value]
    except ValueError:
        return False
    return all(isinstance(v, int | float) for v in value.values())


_STRUCTURE_COLUMNS = {"density_r": "density correlation r",
                      "ring_share": "ring share",
                      "mean_density_ratio": "mean-density variation, predicted / true"}


def _structure_table(structure):
    """The structure scores of a metadata metric zone (`cnnext.metrics.structure_summary`)."""
    scales = [k for k, v in structure.items() if isinstance(v, dict)]
    cols = [c for c in _STRUCTURE_COLUMNS if any(c in structure[k] for k in scales)]

    def fmt(v):
        return "–" if v is None else f"{v:.2f}"

    rows = [[k.replace("pc", " pc")] + [fmt(structure[k].get(c)) for c in cols]
            for k in scales]
    text = ("Where the dust is (the density dA_V/dd, smoothed over each scale; "
            "`cnnext.metrics.structure_metrics`)")
    extra = []
    if isinstance(structure.get("ring_share_random"), int | float):
        extra.append(f"a ring share of {structure['ring_share_random']:.3f} is what "
                     "independent errors give")
    if isinstance(structure.get("fog_index"), int | float):
        extra.append(f"fingers-of-God index {structure['fog_index']:.2f} (above 1: "
                     "features stretched along the sightlines)")
    text += (": " + "; ".join(extra) + ".") if extra else ":"
    return text + "\n\n" + _list_table(["scale"] + [_STRUCTURE_COLUMNS[c] for c in cols],
                                       rows, widths=[16] + [28] * len(cols))


_METRIC_ROWS = {
    "median_rel_err": ("median relative error", lambda v: f"{100 * v:.1f} %"),
    "bias_mag": ("bias (mag)", _fmt_pm),
    "rms_mag": ("RMS (mag)", lambda v: f"{v:.2f}"),
}


def _metric_label(key):
    if key in _METRIC_ROWS:
        return _METRIC_ROWS[key]
    name = key.replace("_mag", " (mag)").replace("_", " ")
    if key.endswith("_mag"):
        return name, lambda v: f"{v:.2f}"
    return name, lambda v: f"{100 * v:.0f} %" if abs(v) <= 1 else f"{v:.2f}"


def _model_card():
    import os

    from cnnext.healpix import cell_area, cell_size
    from cnnext.model import CNNModel

    model = CNNModel()
    md = model.metadata
    tr = md.training
    cfg = tr.get("config", {})
    spec = md.cmd_spec
    law = md.extinction_law
    order = md.healpix_order
    d = np.asarray(md.distances)
    bounds = tr["region"]["bounds"]
    size_mb = os.path.getsize(model.path) / 1e6
    chan = "; ".join(
        f"{c.label[0]} vs {c.label[1]} ({c.mag_range[0]:g}–{c.mag_range[1]:g} by "
        f"{c.colour_range[0]:g}–{c.colour_range[1]:g} mag)" for c in spec.channels)
    q = spec.quality
    net = tr.get("network", {})
    opts = cfg.get("network", {}).get("options", {})
    members = _members(tr)
    n_weights = sum(m.get("network", {}).get("parameters", 0) for m in members)
    summary = [
        ["Task", f"cumulative A_V profile (mag) along a {cell_size(order):.1f}′ sightline, "
                 f"with its 1σ uncertainty, from the 2MASS colour–magnitude diagram of the "
                 f"sightline's HEALPix cell"],
        ["Region", f"{_rst_text(tr['region']['description'])}; bounds l = {bounds['l'][0]:g}–"
                   f"{bounds['l'][1]:g}°, b = {bounds['b'][0]:g}…{bounds['b'][1]:g}°. "
                   f"Outside it, `~cnnext.CNNExtinctionMap` returns NaN (cells flagged "
                   f"`~cnnext.mapfile.FLAG_OUTSIDE_MODEL`; ``mask_outside_model=False`` "
                   f"returns the predictions)"],
        ["Input", f"``cmd`` (batch, {spec.shape[0]}, {spec.shape[1]}, {spec.shape[2]}) "
                  f"float32: {chan}; stars passing the quality cuts (ph_qual "
                  f"{'/'.join(q.ph_qual)}, cc_flg {q.cc_flg}), "
                  f"``{spec.scale:g} {spec.transform}(n)`` per bin"],
        ["Output", f"``av`` and ``sigma`` (batch, {d.size}): cumulative A_V and its 1σ at "
                   f"{d[0]:g}, {d[1]:g}, …, {d[-1]:g} kpc; non-decreasing by construction"],
        ["Cells", f"HEALPix order {order} (nside {1 << order}, {cell_size(order):.1f}′, "
                  f"{cell_area(order):.2f} deg²), nested, Galactic"],
        ["Extinction law", f"{law.name}, R_V = {law.Rv:g}: "
         + ", ".join(f"A_{b}/A_V = {law.coefficients[b]:.4f}" for b in ("J", "H", "Ks"))],
        ["Network", _network_text(members, net, opts, n_weights, cfg)],
        ["File", f"``{Path(model.path).name}``, {size_mb:.1f} MB, SHA-256 "
                 f"``{model.sha256[:16]}…``; written by cnnext {md.cnnext_version}"],
        ["Fewest stars", f"{md.min_stars} counted stars per cell; fewer gives NaN "
                         f"(`~cnnext.mapfile.FLAG_FEW_STARS`)"],
    ]
    out = {"summary": _list_table(None, summary, widths=[18, 82])}
    blocks = []
    for k, member in enumerate(members):
        lines = _training_lines(member)
        if len(members) > 1:
            name = member.get("config", {}).get("name", "?")
            lines = [f"**Network {k + 1}** (trained as ``{name}``):", ""] + lines
        blocks.append("\n".join(lines) + "\n")
    out["training"] = "\n".join(blocks)

    metrics = md.metrics or {}
    ev = cfg.get("evaluation", {})
    parts = []
    for zone in ("inside", "outside"):
        z = metrics.get(zone)
        if not z:
            continue
        keys = [k for k, v in z.items() if _per_distance(v)]
        dists = sorted({float(k) for key in keys for k in z[key]})
        header = ["quantity"] + [f"{x:g} kpc" for x in dists]
        rows = []
        for key in keys:
            label, fmt = _metric_label(key)
            vals = {float(k): v for k, v in z[key].items()}
            rows.append([label] + [fmt(vals[x]) if x in vals else "" for x in dists])
        pts = ev.get(zone, [])
        where = ", ".join(f"({lon:g}°, {lat:+g}°)" for lon, lat in pts)
        title = "Inside the training region" if zone == "inside" else \
            "Outside the training region"
        parts.append(f"**{title}**: {z.get('n_sightlines', len(pts))} held-out sightlines"
                     + (f" at (l, b) = {where}" if where else "")
                     + f", {z.get('n_examples', '?')} profiles. The ±1σ band holds the "
                     f"truth for **{100 * z.get('coverage68', float('nan')):.1f} %** of "
                     f"the values (68.3 % if the uncertainties were right).\n")
        parts.append(_list_table(header, rows, widths=[28] + [12] * len(dists)))
        if isinstance(z.get("structure"), dict) and z["structure"]:
            parts.append(_structure_table(z["structure"]))
    floor = metrics.get("rel_err_floor_mag", 0.1)
    parts.append(f"Relative error: ``|pred − true| / max(true, {floor:g} mag)``. "
                 "Bias and RMS: mean and root-mean-square of predicted minus true "
                 "cumulative A_V.\n")
    out["metrics"] = "\n".join(parts)
    _STATE["metrics"] = metrics
    return out


def _network_text(members, net, opts, n_weights, cfg):
    """The summary's network row: one network, or each member of an ensemble."""
    def one(arch, options):
        return f"``{arch}``" + (f" ({', '.join(f'{k} {v}' for k, v in options.items())})"
                                if options else "")

    storage = ("; weights stored as float16, computed in float32"
               if cfg.get("training", {}).get("float16_weights") else "")
    if len(members) == 1:
        return f"{one(net.get('arch', '?'), opts)} — {n_weights / 1e6:.2f} M weights{storage}"
    parts = []
    for m in members:
        mcfg = m.get("config", {})
        refit = mcfg.get("training", {}).get("bias_refit_epochs", 0)
        parts.append(f"{mcfg.get('name', '?')}: "
                     + one(mcfg.get("network", {}).get("arch", "?"),
                           mcfg.get("network", {}).get("options", {}))
                     + (f", output biases refitted with dropout off ({refit} passes)"
                        if refit else ""))
    return (f"the average of {len(members)} networks (an ensemble: mean profile, root "
            f"mean square of the sigmas): " + "; ".join(parts)
            + f" — {n_weights / 1e6:.2f} M weights in all{storage}")


def _data_time(seconds):
    """The data-generation part of a network's time (none when it was not kept)."""
    # None: made by a version that kept no time; below 1 s: the data were on disk
    # from an earlier run and the model's metadata holds that run's 0 s
    if seconds is None or seconds < 1:
        return "data generation in an earlier run (not timed), "
    return f"data generation {seconds:,.0f} s, "


def _members(training):
    """The training records of a model's networks: its members', or its own."""
    return [m["training"] for m in training.get("members", [])] or [training]


def _training_lines(tr):
    """The model card's description of one network's training (its metadata record)."""
    cfg = tr.get("config", {})
    sl = tr.get("sightlines", [])
    opt = cfg.get("training", {})
    ds = cfg.get("dataset", {})
    return [
        f"- **Sightlines**: {len(sl)}, at (l, b) = "
        + ", ".join(f"({lon:g}°, {lat:+g}°)" for lon, lat in sl) + ".",
        f"- **Examples**: {tr.get('n_train', 0):,} for training and {tr.get('n_val', 0):,} "
        f"for validation ({ds.get('n_realisations', '?')} star catalogues per sightline, "
        f"{ds.get('n_val_realisations', '?')} kept for validation, "
        f"{ds.get('examples_per_realisation', '?')} random extinction profiles each); "
        f"source ``{tr.get('source', '?')}``.",
        f"- **Optimisation**: β-NLL (β = {opt.get('beta', '?')}), AdamW (learning rate "
        f"{opt.get('lr', '?')}, weight decay {opt.get('weight_decay', '?')}), batch "
        f"{opt.get('batch_size', '?')}, {tr.get('epochs_run', '?')} epochs (best at "
        f"epoch {tr.get('best_epoch', '?')}, validation loss "
        f"{tr.get('best_val_loss', float('nan')):.3f}), seed {tr.get('seed', '?')}"
        + (f"; then the output biases refitted with dropout off "
           f"({tr['bias_refit_epochs']} passes)." if tr.get("bias_refit_epochs") else "."),
        f"- **Time**: {_data_time(tr.get('dataset_seconds', float('nan')))}training "
        f"{tr.get('training_seconds', float('nan')):,.0f} s "
        f"(CPU of the development machine).",
    ]
