# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Smoke tests of cnnext.plotting: the artists hold the arrays given, figures save."""

import io

import astropy.units as u
import numpy as np
import pytest
from astropy.table import QTable

from cnnext import CMDSpec
from cnnext.plotting import (
    face_on_grid,
    plot_cmd,
    plot_comparison_profiles,
    plot_comparison_slices,
    plot_face_on,
    plot_profile,
    plot_slice,
    slice_edges,
)

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.collections import QuadMesh  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

D = np.round(np.arange(1, 101) * 0.1, 10)


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def test_plot_cmd_images_and_axes():
    spec = CMDSpec()
    rng = np.random.default_rng(1)
    cmd = rng.uniform(0, 3, size=spec.shape).astype(np.float32)
    fig = plot_cmd(cmd[None], spec)  # a batch of one is accepted
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 2
    for ax, channel, image in zip(axes, spec.channels, cmd):
        im = ax.images[0]
        np.testing.assert_array_equal(im.get_array(), image)
        c0, c1 = channel.colour_range
        m0, m1 = channel.mag_range
        assert im.get_extent() == [c0, c1, m1, m0]
        assert ax.get_ylim()[0] > ax.get_ylim()[1]  # faint stars at the bottom
        assert (ax.get_ylabel(), ax.get_xlabel()) == channel.label
    assert _png(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="shape"):
        plot_cmd(np.zeros((1, 8, 8)), spec)


def test_plot_cmd_colour_colour_channel_grows_upwards():
    from cnnext.cmds import CMDChannel
    channel = CMDChannel(("J", "H"), ("H", "Ks"), (-0.3, 3.7), (-0.5, 3.5))
    spec = CMDSpec(channels=(channel,), n_mag=8, n_colour=8)
    fig = plot_cmd(np.ones(spec.shape, np.float32), spec)
    ax = [ax for ax in fig.axes if ax.images][0]
    assert ax.images[0].get_extent() == [-0.5, 3.5, -0.3, 3.7]
    assert ax.get_ylim()[0] < ax.get_ylim()[1]  # redder J-H higher up
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("J-H", "H-Ks")


def test_plot_profile_band_and_truth():
    av, sigma, truth = 0.7 * D, 0.1 + 0.05 * D, 0.75 * D
    ax = plot_profile(D * u.kpc, av * u.mag, sigma, truth=truth, label="cnnext",
                      quantity="A_Ks")
    line, true_line = ax.lines
    np.testing.assert_allclose(line.get_xdata(), D)
    np.testing.assert_allclose(line.get_ydata(), av)
    np.testing.assert_allclose(true_line.get_ydata(), truth)
    assert true_line.get_linestyle() == "--"
    band = ax.collections[0].get_paths()[0].vertices
    # the band's polygon spans exactly av - sigma .. av + sigma
    assert band[:, 1].min() == pytest.approx((av - sigma).min())
    assert band[:, 1].max() == pytest.approx((av + sigma).max())
    assert "K_s" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ["cnnext", "cnnext ±1σ", "truth"]
    # drawing on given axes adds to them
    ax2 = plot_profile(D, av, ax=ax)
    assert ax2 is ax and len(ax.lines) == 3


def test_plot_slice_holds_values():
    l = np.arange(280.0, 300.01, 0.5)
    values = np.outer(np.linspace(0.5, 1.5, l.size), 0.7 * D)
    values[3, :10] = np.nan
    ax = plot_slice(l, D, values, vmax=10)
    mesh = ax.collections[0]
    assert isinstance(mesh, QuadMesh)
    arr = mesh.get_array()
    np.testing.assert_allclose(arr.filled(np.nan).reshape(D.size, l.size), values.T)
    assert arr.mask.reshape(D.size, l.size)[:10, 3].all()
    assert ax.xaxis_inverted()
    le, de = slice_edges(l, D)
    assert le.size == l.size + 1 and de.size == D.size + 1
    assert de[0] == pytest.approx(0.05) and le[0] == pytest.approx(279.75)
    assert len(ax.figure.axes) == 2  # with its colour bar
    with pytest.raises(ValueError, match="shape"):
        plot_slice(l, D, values.T)


def test_plot_face_on_geometry_and_density():
    l = np.array([270.0, 280.0, 290.0])
    values = np.outer(np.ones(l.size), 0.7 * D)
    ax = plot_face_on(l, D, values)
    mesh = [c for c in ax.collections if isinstance(c, QuadMesh)][0]
    # cumulative 0.7 d gives a constant density of 0.7 mag/kpc
    np.testing.assert_allclose(mesh.get_array(), 0.7, rtol=1e-9)
    x, y = face_on_grid(l, D)
    np.testing.assert_allclose(mesh.get_coordinates()[..., 0], x)
    np.testing.assert_allclose(mesh.get_coordinates()[..., 1], y)
    assert x.shape == (l.size + 1, D.size + 1)
    assert ax.get_aspect() == 1.0
    assert ax.lines[0].get_xdata()[0] == 0 and ax.lines[0].get_ydata()[0] == 0  # the Sun
    cum = plot_face_on(l, D, values, differential=False, colorbar=False)
    np.testing.assert_allclose(cum.collections[0].get_array(), values)
    # l = 270 deg lies straight at negative y: x ~ 0, y = -d
    xe, ye = face_on_grid([270.0], [10.0])
    le, de = slice_edges([270.0], [10.0])
    assert le.tolist() == [269.5, 270.5] and de.tolist() == [9.5, 10.5]
    np.testing.assert_allclose(ye[:, -1], 10.5 * np.sin(np.radians(le)))
    np.testing.assert_allclose(xe[:, -1], 10.5 * np.cos(np.radians(le)))
    assert ye.max() < -9.4 and np.abs(xe).max() < 0.1


def test_comparison_figures():
    d = D[:20]
    prof = QTable()
    prof["l"] = np.full(d.size, 285.0) * u.deg
    prof["b"] = np.zeros(d.size) * u.deg
    prof["distance"] = d * u.kpc
    prof["cnnext"] = 0.8 * d * u.mag
    prof["cnnext_sigma"] = np.full(d.size, 0.2) * u.mag
    prof["marshall2006"] = 0.9 * d * u.mag
    prof["marshall2006_sigma"] = np.full(d.size, np.nan) * u.mag
    prof.meta["quantity"] = "A_V"
    ax = plot_comparison_profiles(prof, truth=0.85 * d)
    assert [ln.get_label() for ln in ax.lines] == ["cnnext", "marshall2006", "truth"]
    assert len(ax.collections) == 1  # only cnnext has a finite sigma band
    assert "285.00" in ax.get_title()

    lons = np.array([284.0, 285.0, 286.0])
    sl = QTable()
    sl["l"] = lons * u.deg
    sl["b"] = np.zeros(3) * u.deg
    sl["a"] = np.outer(np.ones(3), 0.8 * d) * u.mag
    sl["b_map"] = np.outer(np.ones(3), 0.4 * d) * u.mag
    sl.meta.update(quantity="A_V", distances=d.tolist())
    fig = plot_comparison_slices(sl)
    assert isinstance(fig, Figure)
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    assert [a.get_title() for a in panels] == ["a", "b_map"]
    # one colour scale for all panels
    assert len({a.collections[0].get_clim() for a in panels}) == 1
    np.testing.assert_allclose(panels[1].collections[0].get_array().reshape(d.size, 3),
                               (0.4 * np.outer(np.ones(3), d)).T)
    assert _png(fig).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="no map columns"):
        plot_comparison_profiles(prof[["l", "b", "distance"]])
