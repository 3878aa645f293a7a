# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Matplotlib figures: CMDs, extinction profiles, map slices, face-on views, comparisons,
and the validation figures of a training run.

Every function draws on the ``ax`` (or ``fig``) it is given, or on a new
`matplotlib.figure.Figure` created without pyplot (so nothing depends on the
interactive backend or on global pyplot state), and returns what it drew on.
Save with ``fig.savefig("name.png")``. The validation figures of a training run
(`plot_validation_profiles`, `plot_validation_metrics`, `plot_training_history`)
write PNG files and return their paths.
"""

from pathlib import Path

import astropy.units as u
import numpy as np

__all__ = ["plot_cmd", "plot_profile", "plot_slice", "plot_face_on", "slice_edges",
           "face_on_grid", "plot_comparison_profiles", "plot_comparison_slices",
           "plot_validation_profiles", "plot_validation_metrics", "plot_training_history"]

_QUANTITY_LABEL = {"A_V": r"$A_V$", "A_J": r"$A_J$", "A_H": r"$A_H$", "A_Ks": r"$A_{K_s}$",
                   "E(B-V)": r"$E(B-V)$"}


def _mpl():
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("cnnext.plotting needs matplotlib: pip install matplotlib") \
            from None
    return Figure


def _new_axes(ax, figsize=(6.0, 4.0)):
    if ax is not None:
        return ax
    Figure = _mpl()
    fig = Figure(figsize=figsize, layout="constrained")
    return fig.add_subplot()


def _values(x, unit):
    return x.to_value(unit) if isinstance(x, u.Quantity) else np.asarray(x, dtype=float)


def _edges(centres):
    """Bin edges around increasing (or decreasing) centres: midpoints, ends extrapolated."""
    c = np.asarray(centres, float)
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def plot_cmd(cmd, spec, *, fig=None, cmap="viridis"):
    """
    Show a CMD tensor as images, one panel per channel.

    Parameters
    ----------
    cmd : array, shape (channels, n_mag, n_colour)
        One sightline's CMD as built by `~cnnext.cmds.build_cmds` (rows are
        magnitude bins from bright to faint, columns colour bins from blue to red).
    spec : `~cnnext.cmds.CMDSpec`
        The specification that made it (axes ranges and labels).
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw on (a new one by default).
    cmap : str
        Colour map.

    Returns
    -------
    `~matplotlib.figure.Figure`
        With one axes per channel; magnitude increases downwards.

    Examples
    --------
    The CMDs the network reads for one cell of a mock 2MASS sky:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> import numpy as np
       >>> from cnnext import CMDSpec, build_cmds
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.plotting import plot_cmd
       >>> from cnnext.synthetic import MockSky
       >>> spec = CMDSpec()
       >>> stars = MockSky(seed=2022).query_cells([lonlat_to_cells(286.0, 0.0, 7)], 7)
       >>> cmds, n_stars = build_cmds(stars, np.zeros(len(stars), int), 1, spec)
       >>> fig = plot_cmd(cmds[0], spec, fig=plt.figure(figsize=(7.5, 4)))
       >>> [ax.get_xlabel() for ax in fig.axes[:2]]
       ['J-Ks', 'H-Ks']
    """
    cmd = np.asarray(cmd, dtype=float)
    if cmd.ndim == 4 and cmd.shape[0] == 1:
        cmd = cmd[0]
    if cmd.shape != tuple(spec.shape):
        raise ValueError(f"cmd has shape {cmd.shape} but the spec describes {spec.shape}")
    if fig is None:
        Figure = _mpl()
        fig = Figure(figsize=(3.2 * len(spec.channels) + 0.8, 4.0), layout="constrained")
    axes = fig.subplots(1, len(spec.channels), squeeze=False)[0]
    vmax = float(cmd.max()) if cmd.size and cmd.max() > 0 else 1.0
    for ax, channel, image in zip(axes, spec.channels, cmd):
        c0, c1 = channel.colour_range
        m0, m1 = channel.mag_range
        # magnitudes grow downwards, a colour on the row axis (colour-colour) upwards
        if isinstance(channel.mag, str):
            origin, extent = "upper", (c0, c1, m1, m0)
        else:
            origin, extent = "lower", (c0, c1, m0, m1)
        im = ax.imshow(image, origin=origin, extent=extent, aspect="auto",
                       cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
        mag, colour = channel.label
        ax.set_xlabel(colour)
        ax.set_ylabel(mag)
    fig.colorbar(im, ax=list(axes), label=f"{spec.transform}(counts) x {spec.scale:g}")
    return fig


def plot_profile(distances, av, sigma=None, *, truth=None, ax=None, label=None,
                 color=None, quantity="A_V", band_alpha=0.3):
    """
    Plot a cumulative extinction profile with its 1-sigma band and, optionally, the truth.

    Parameters
    ----------
    distances : array or Quantity
        Distances (kpc when plain numbers).
    av : array
        Cumulative extinction (mag) at ``distances``.
    sigma : array, optional
        1-sigma uncertainty (mag): drawn as a shaded band.
    truth : array, optional
        True profile (mag), drawn as a dashed black line.
    ax : `~matplotlib.axes.Axes`, optional
        Axes to draw on (a new figure by default).
    label, color : str, optional
        Legend label and colour of the profile.
    quantity : str
        Name of the plotted quantity for the y label (``"A_V"``, ``"A_Ks"``…).
    band_alpha : float
        Opacity of the band.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    A sightline of a mock 2MASS sky, predicted by the shipped network on the fly,
    against the sky's true profile:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> from astropy.coordinates import SkyCoord
       >>> from cnnext import CNNExtinctionMap
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.plotting import plot_profile
       >>> from cnnext.synthetic import MockSky
       >>> sky = MockSky(seed=2022)
       >>> m = CNNExtinctionMap(source=sky, cache=False)
       >>> av, sigma = m.query(SkyCoord(286.0, 0.0, unit="deg", frame="galactic"),
       ...                     return_sigma=True)
       >>> d = m.distances.value
       >>> truth = sky.true_profile([lonlat_to_cells(286.0, 0.0, 7)], 7).nodes(d)[0]
       >>> fig, ax = plt.subplots()
       >>> ax = plot_profile(d, av, sigma, truth=truth, ax=ax, label="cnnext")
       >>> len(ax.lines), len(ax.collections)
       (2, 1)
    """
    ax = _new_axes(ax)
    d = _values(distances, u.kpc)
    av = _values(av, u.mag)
    (line,) = ax.plot(d, av, color=color, label=label, lw=1.8)
    if sigma is not None:
        s = _values(sigma, u.mag)
        ax.fill_between(d, av - s, av + s, color=line.get_color(), alpha=band_alpha, lw=0,
                        label=None if label is None else f"{label} ±1σ")
    if truth is not None:
        ax.plot(d, _values(truth, u.mag), color="k", ls="--", lw=1.2, label="truth")
    ax.set_xlabel("distance (kpc)")
    ax.set_ylabel(f"{_QUANTITY_LABEL.get(quantity, quantity)} (mag)")
    ax.set_xlim(0, float(np.nanmax(d)) if d.size else 1)
    if label is not None or truth is not None:
        ax.legend(loc="upper left", fontsize="small")
    return ax


def slice_edges(l, distances):
    """
    Return the longitude and distance bin edges of a slice grid (deg, kpc).

    Edges lie halfway between the centres, the outer ones as far out as the
    neighbouring half-step; distance edges stop at zero.

    Examples
    --------
    >>> from cnnext.plotting import slice_edges
    >>> le, de = slice_edges([280.0, 280.5, 281.0], [0.1, 0.2, 0.3])
    >>> le.tolist(), de.round(2).tolist()
    ([279.75, 280.25, 280.75, 281.25], [0.05, 0.15, 0.25, 0.35])
    """
    return _edges(_values(l, u.deg)), np.clip(_edges(_values(distances, u.kpc)), 0, None)


def plot_slice(l, distances, values, *, ax=None, cmap="magma_r", vmin=0.0, vmax=None,
               quantity="A_V", colorbar=True, title=None):
    """
    Draw a longitude-distance slice of a map (at fixed latitude).

    Parameters
    ----------
    l : array or Quantity
        Galactic longitudes (deg) of the rows of ``values``.
    distances : array or Quantity
        Distances (kpc) of the columns of ``values``.
    values : array, shape (n_l, n_dist)
        Extinction (mag) on the grid; NaN is left blank.
    ax : `~matplotlib.axes.Axes`, optional
        Axes to draw on (a new figure by default).
    cmap, vmin, vmax : optional
        Colour scale.
    quantity : str
        Label of the colour bar.
    colorbar : bool
        Add a colour bar.
    title : str, optional
        Axes title.

    Returns
    -------
    `~matplotlib.axes.Axes`
        Longitude increases to the left, as on the sky; the image is a
        `~matplotlib.collections.QuadMesh` holding ``values.T`` (distance rows).

    Examples
    --------
    The true extinction of a mock 2MASS sky in the plane, every 0.25° in
    longitude:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> import numpy as np
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.plotting import plot_slice
       >>> from cnnext.synthetic import MockSky
       >>> l, d = np.arange(280, 300.01, 0.25), np.arange(1, 101) * 0.1
       >>> cells = lonlat_to_cells(l, np.zeros_like(l), 7)
       >>> av = MockSky(seed=2022).true_profile(cells, 7).nodes(d)  # (len(l), len(d))
       >>> fig, ax = plt.subplots(figsize=(6, 4))
       >>> ax = plot_slice(l, d, av, ax=ax, title="mock sky, b = 0°")
       >>> ax.collections[0].get_array().shape
       (100, 81)
    """
    ax = _new_axes(ax)
    values = np.ma.masked_invalid(_values(values, u.mag))
    le, de = slice_edges(l, distances)
    if values.shape != (le.size - 1, de.size - 1):
        raise ValueError(f"values has shape {values.shape}, expected "
                         f"({le.size - 1}, {de.size - 1}) = (len(l), len(distances))")
    mesh = ax.pcolormesh(le, de, values.T, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    # the mesh lies inside the axes: measuring its many cells for the layout is wasted time
    mesh.set_in_layout(False)
    if not ax.xaxis_inverted():
        ax.invert_xaxis()
    ax.set_xlabel("Galactic longitude (deg)")
    ax.set_ylabel("distance (kpc)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax,
                           label=f"{_QUANTITY_LABEL.get(quantity, quantity)} (mag)")
    return ax


def face_on_grid(l, distances):
    """
    Return the x, y corners (kpc) of the (longitude, distance) cells seen face-on.

    x points from the Sun towards the Galactic centre, y towards l = 90°.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.plotting import face_on_grid
    >>> x, y = face_on_grid([270.0, 290.0], [1.0, 2.0])
    >>> x.shape  # corners: (len(l) + 1, len(distances) + 1)
    (3, 3)
    >>> print(np.round(y[1], 2))  # along l = 280°, at 0.5, 1.5 and 2.5 kpc
    [-0.49 -1.48 -2.46]
    """
    le, de = slice_edges(l, distances)
    ll, dd = np.meshgrid(np.radians(le), de, indexing="ij")
    return dd * np.cos(ll), dd * np.sin(ll)


def plot_face_on(l, distances, values, *, ax=None, cmap="magma_r", vmin=0.0, vmax=None,
                 differential=True, colorbar=True, title=None):
    """
    Face-on view of the plane: extinction on a (longitude, distance) grid in x-y (kpc).

    Parameters
    ----------
    l : array or Quantity
        Galactic longitudes (deg) of the rows of ``values``.
    distances : array or Quantity
        Distances (kpc) of the columns, increasing.
    values : array, shape (n_l, n_dist)
        Cumulative extinction A_V (mag), e.g. of a slice at b = 0.
    ax : `~matplotlib.axes.Axes`, optional
        Axes to draw on (a new figure by default).
    differential : bool
        Show the extinction density dA/dd (mag/kpc), which locates the dust
        (default), instead of the cumulative extinction.
    cmap, vmin, vmax, colorbar, title : optional
        As in `plot_slice`.

    Returns
    -------
    `~matplotlib.axes.Axes`
        Equal-aspect axes with the Sun at (0, 0) marked; the QuadMesh holds the
        ``(n_l, n_dist)`` values drawn.

    Examples
    --------
    Where the dust of a mock 2MASS sky lies in the plane, seen from the north
    Galactic pole:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> import numpy as np
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.plotting import plot_face_on
       >>> from cnnext.synthetic import MockSky
       >>> l, d = np.arange(276, 304.01, 0.25), np.arange(1, 101) * 0.1
       >>> cells = lonlat_to_cells(l, np.zeros_like(l), 7)
       >>> av = MockSky(seed=2022).true_profile(cells, 7).nodes(d)
       >>> fig, ax = plt.subplots(figsize=(6, 5))
       >>> ax = plot_face_on(l, d, av, ax=ax, vmax=3.0, title="mock sky: dA_V/dd at b = 0°")
       >>> ax.collections[0].get_array().shape
       (113, 100)
    """
    ax = _new_axes(ax, figsize=(5.5, 5.0))
    d = _values(distances, u.kpc)
    vals = _values(values, u.mag)
    if vals.shape != (np.size(l), d.size):
        raise ValueError(f"values has shape {vals.shape}, expected "
                         f"({np.size(l)}, {d.size}) = (len(l), len(distances))")
    if differential:
        # increments over each distance bin, starting from zero at the Sun
        prev = np.concatenate([np.zeros((vals.shape[0], 1)), vals[:, :-1]], axis=1)
        width = np.diff(np.concatenate([[0.0], d]))
        vals = (vals - prev) / width
        label = "extinction density (mag/kpc)"
    else:
        label = "cumulative extinction (mag)"
    x, y = face_on_grid(l, d)
    data = np.ma.masked_invalid(vals)
    mesh = ax.pcolormesh(x, y, data, cmap=cmap, vmin=vmin, vmax=vmax, shading="flat")
    mesh.set_in_layout(False)
    ax.plot([0], [0], marker="*", color="gold", mec="k", ms=12, ls="none", label="Sun")
    ax.set_aspect("equal")
    ax.set_xlabel("x (kpc, towards the Galactic centre)")
    ax.set_ylabel("y (kpc, towards l = 90°)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label=label, shrink=0.8)
    return ax


def _map_columns(table):
    names = [c for c in table.colnames if c not in ("l", "b", "distance")
             and not c.endswith("_sigma")]
    if not names:
        raise ValueError("the table has no map columns (see cnnext.compare.query_maps)")
    return names


def plot_comparison_profiles(table, *, ax=None, truth=None):
    """
    Plot the profiles of a `cnnext.compare.compare_profiles` table, one line per map.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        Output of `~cnnext.compare.compare_profiles`.
    ax : `~matplotlib.axes.Axes`, optional
        Axes to draw on.
    truth : array, optional
        True profile at the table's distances.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    The shipped network on a mock 2MASS sky, computing the sightline on the fly,
    against the sky's truth given as a second map:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> import numpy as np
       >>> from cnnext import CNNExtinctionMap
       >>> from cnnext.compare import compare_profiles
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.profiles import ProfileMap
       >>> from cnnext.plotting import plot_comparison_profiles
       >>> from cnnext.synthetic import MockSky
       >>> sky = MockSky(seed=2022)
       >>> cnn = CNNExtinctionMap(source=sky, cache=False)
       >>> d = cnn.distances.value
       >>> cell = lonlat_to_cells(291.0, 0.0, 7)
       >>> av = sky.true_profile([cell], 7).nodes(d)
       >>> truth = CNNExtinctionMap(map_fname=ProfileMap(
       ...     cells=[cell], order=7, distances=d, av=av, sigma=0 * av, n_stars=[1]))
       >>> table = compare_profiles({"cnnext": cnn, "truth": truth}, (291.0, 0.0),
       ...                          return_sigma=True)
       >>> fig, ax = plt.subplots()
       >>> ax = plot_comparison_profiles(table, ax=ax)
       >>> [line.get_label() for line in ax.lines]
       ['cnnext', 'truth']
    """
    ax = _new_axes(ax)
    quantity = table.meta.get("quantity", "A_V")
    d = _values(table["distance"], u.kpc)
    for name in _map_columns(table):
        sig = table[f"{name}_sigma"] if f"{name}_sigma" in table.colnames else None
        if sig is not None and not np.isfinite(_values(sig, u.mag)).any():
            sig = None
        plot_profile(d, table[name], sig, ax=ax, label=name, quantity=quantity)
    if truth is not None:
        ax.plot(d, _values(truth, u.mag), color="k", ls="--", lw=1.2, label="truth")
        ax.legend(loc="upper left", fontsize="small")
    l0, b0 = float(_values(table["l"], u.deg)[0]), float(_values(table["b"], u.deg)[0])
    ax.set_title(f"l = {l0:.2f}°, b = {b0:.2f}°")
    return ax


def plot_comparison_slices(table, *, fig=None, vmax=None, cmap="magma_r"):
    """
    Plot a `cnnext.compare.compare_slice` table: one longitude-distance panel per map,
    on a common colour scale.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        Output of `~cnnext.compare.compare_slice`.
    fig : `~matplotlib.figure.Figure`, optional
        Figure to draw on (a new one by default).
    vmax : float, optional
        Top of the colour scale (mag); default the 99th percentile of all maps.
    cmap : str
        Colour map.

    Returns
    -------
    `~matplotlib.figure.Figure`
        With one axes per map (and a colour bar).

    Examples
    --------
    The shipped network on a mock 2MASS sky (l = 284–288°, b = 0°, computed on
    the fly) against the sky's truth:

    .. plot::
       :include-source:

       >>> import matplotlib.pyplot as plt
       >>> import numpy as np
       >>> from cnnext import CNNExtinctionMap
       >>> from cnnext.compare import compare_slice
       >>> from cnnext.healpix import lonlat_to_cells
       >>> from cnnext.profiles import ProfileMap
       >>> from cnnext.plotting import plot_comparison_slices
       >>> from cnnext.synthetic import MockSky
       >>> sky = MockSky(seed=2022)
       >>> cnn = CNNExtinctionMap(source=sky, cache=False)
       >>> d = cnn.distances.value
       >>> l = np.arange(284.0, 288.01, 0.25)
       >>> cells = np.unique(lonlat_to_cells(l, np.zeros_like(l), 7))
       >>> av = sky.true_profile(cells, 7).nodes(d)
       >>> truth = CNNExtinctionMap(map_fname=ProfileMap(
       ...     cells=cells, order=7, distances=d, av=av, sigma=0 * av,
       ...     n_stars=np.ones(cells.size)))
       >>> table = compare_slice({"cnnext": cnn, "truth": truth}, l, b=0.0, distances=d)
       >>> fig = plot_comparison_slices(table, fig=plt.figure(figsize=(8, 3.5)))
       >>> [ax.get_title() for ax in fig.axes[:2]]
       ['cnnext', 'truth']
    """
    names = _map_columns(table)
    if fig is None:
        Figure = _mpl()
        fig = Figure(figsize=(4.2 * len(names) + 1.0, 4.0), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False, sharey=True)[0]
    d = np.asarray(table.meta["distances"], float)
    l = _values(table["l"], u.deg)
    if vmax is None:
        finite = np.concatenate([np.ravel(_values(table[n], u.mag)) for n in names])
        finite = finite[np.isfinite(finite)]
        vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    quantity = table.meta.get("quantity", "A_V")
    for i, (ax, name) in enumerate(zip(axes, names)):
        plot_slice(l, d, table[name], ax=ax, vmax=vmax, cmap=cmap, quantity=quantity,
                   colorbar=i == len(names) - 1, title=name)
        if i:
            ax.set_ylabel("")
    b0 = float(_values(table["b"], u.deg)[0])
    fig.suptitle(f"{quantity} at b = {b0:.2f}°")
    return fig


# ------------------------------------------------------------------ training

def plot_validation_profiles(distances, truth, pred, sigma, sightline, labels, path, *,
                             per_panel=3, title=""):
    """
    Plot truth against prediction (with its 1-sigma band) for each sightline.

    One panel per sightline, ``per_panel`` example profiles in each.

    Parameters
    ----------
    distances : array-like
        Distance nodes (kpc).
    truth, pred, sigma : array-like
        ``(n, n_dist)`` profiles (mag).
    sightline : array of int
        Sightline index of each example.
    labels : list of str
        Panel title of each sightline index.
    path : path-like
        Output PNG.
    per_panel : int
        Examples drawn per sightline (the first ones).
    title : str
        Figure title.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    ids = [i for i in range(len(labels)) if np.any(sightline == i)]
    if not ids:
        return None
    ncol = min(3, len(ids))
    nrow = int(np.ceil(len(ids) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False,
                             sharex=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, i in zip(axes.flat, ids):
        rows = np.flatnonzero(sightline == i)[:per_panel]
        for j, r in enumerate(rows):
            c = colours[j % len(colours)]
            ax.plot(distances, truth[r], color=c, lw=1.5, ls="--")
            ax.plot(distances, pred[r], color=c, lw=1.2)
            ax.fill_between(distances, pred[r] - sigma[r], pred[r] + sigma[r], color=c,
                            alpha=0.2, lw=0)
        ax.set_title(labels[i], fontsize=9)
        ax.set_ylabel("cumulative $A_V$ (mag)")
    for ax in axes[-1]:
        ax.set_xlabel("distance (kpc)")
    for ax in list(axes.flat)[len(ids):]:
        ax.set_visible(False)
    axes.flat[0].plot([], [], "k--", label="truth")
    axes.flat[0].plot([], [], "k-", label="CNN ± 1σ")
    axes.flat[0].legend(fontsize=8, loc="upper left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_validation_metrics(groups, path):
    """
    Plot bias, RMS and 68% coverage against distance for each evaluation group.

    Parameters
    ----------
    groups : dict of str to dict
        ``{name: profile_metrics(...)}``.
    path : path-like
        Output PNG.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for name, m in groups.items():
        if not m["n"]:
            continue
        d = m["distances_kpc"]
        axes[0].plot(d, m["bias"], label=f"{name} (n={m['n']})")
        axes[1].plot(d, m["rms"], label=name)
        axes[2].plot(d, m["coverage68"], label=name)
    axes[0].axhline(0, color="k", lw=0.5)
    axes[2].axhspan(0.60, 0.76, color="0.85", label="goal 60-76%")
    axes[2].axhline(0.6827, color="k", lw=0.5)
    axes[2].set_ylim(0, 1)
    for ax, lab in zip(axes, ("bias of cumulative $A_V$ (mag)",
                              "RMS of cumulative $A_V$ (mag)", "1σ interval coverage")):
        ax.set_xlabel("distance (kpc)")
        ax.set_ylabel(lab)
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_training_history(history, path):
    """
    Plot the training and validation losses and the validation RMSE per epoch.

    Parameters
    ----------
    history : list of dict
        `~cnnext.training.train.FitResult.history`.
    path : path-like
        Output PNG.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epoch = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot(epoch, [h["train_loss"] for h in history], "o-", ms=3, label="training")
    axes[0].plot(epoch, [h["val_loss"] for h in history], "o-", ms=3, label="validation")
    axes[0].set_ylabel("β-NLL loss")
    axes[0].set_yscale("symlog", linthresh=1.0)
    axes[0].legend(fontsize=8)
    axes[1].plot(epoch, [h["val_rmse"] for h in history], "o-", ms=3, color="C1")
    axes[1].set_ylabel("validation RMSE of $A_V$ (mag)")
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
