# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Fake VizieR and IRSA servers on 127.0.0.1, for testing the real astroquery clients.

`FakeVizier` answers ``POST /viz-bin/votable`` (HTTPS with a `trustme`
certificate, as astroquery's Vizier only speaks https) and `FakeIrsa` answers
``POST /TAP/sync`` (plain HTTP), both with VOTables in the format of the real
services, cone searches over a star table given by the test. Both can inject
faults — HTTP errors, error documents, cut-off or garbled bodies, a server that
never answers — request by request or at random, and count requests.

Examples
--------
>>> import numpy as np
>>> from cnnext.healpix import lonlat_to_cells
>>> from cnnext.testing.servers import FakeVizier, random_stars
>>> stars = random_stars(200, seed=1)
>>> cells = np.unique(lonlat_to_cells(stars["l"], stars["b"], 7))
>>> with FakeVizier(stars, faults=["http500"]) as server:
...     source = server.source(cache=False, retry_backoff=0.0)
...     got = source.query_cells(cells, order=7)
...     faults = [r["fault"] for r in server.requests]
>>> len(got), faults[:2]
(200, ['http500', 'ok'])
"""

import os
import re
import shutil
import socket
import ssl
import tempfile
import threading
import urllib.parse
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table

__all__ = ["FAULTS", "FakeVizier", "FakeIrsa", "random_stars", "unused_port"]

#: Fault names accepted in ``faults``: ``"ok"`` (a normal answer), ``"http500"``,
#: ``"http503"``, ``"http400"`` (HTTP errors), ``"error"`` (HTTP 200 with the
#: service's error document), ``"cutoff"`` (Content-Length announces the whole
#: answer, half of it is sent, the connection closes), ``"garbled"`` (half of the
#: answer, consistently framed), ``"hang"`` (no answer until the server stops or
#: ``hang_seconds`` pass). An `int` is answered as that HTTP status.
FAULTS = ("ok", "http500", "http503", "http400", "error", "cutoff", "garbled", "hang")


def unused_port():
    """Return a TCP port on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _designations(ra, dec):
    """2MASS-style designations ``HHMMSSss±DDMMSSs`` from ICRS degrees."""
    ra_cs = np.round(np.asarray(ra) / 15.0 * 360000.0).astype(np.int64) % 8640000
    hh, rem = np.divmod(ra_cs, 360000)
    mm, rem = np.divmod(rem, 6000)
    dec_ds = np.round(np.abs(np.asarray(dec)) * 36000.0).astype(np.int64)
    dd, drem = np.divmod(dec_ds, 36000)
    dm, ds = np.divmod(drem, 600)
    sign = np.where(np.asarray(dec) < 0, "-", "+")
    return np.array([f"{a:02d}{b:02d}{c:04d}{s}{d:02d}{e:02d}{f:03d}"
                     for a, b, c, s, d, e, f in zip(hh, mm, rem, sign, dd, dm, ds)])


def random_stars(n, *, l=(279.0, 281.0), b=(-1.0, 1.0), seed=0, upper_limit_fraction=0.05,
                 whole_cells=7):
    """
    Return a random star table as a 2MASS server would hold it.

    Positions are drawn uniformly on the sphere in the Galactic box ``l`` x ``b``
    (deg); with ``whole_cells`` (a HEALPix order, default 7), each star is then
    moved to a random place inside its cell of that order, so that every cell the
    box touches is covered all over (as a real survey covers it), the box's
    edge cells with fewer stars. They are converted to ICRS and rounded to 1e-6
    deg (VizieR's ``RAJ2000``
    precision); ``l`` and ``b`` are then recomputed from the rounded ICRS
    position exactly as `~cnnext.photometry.to_star_table` does, so a star's cell
    is the same on both sides. Magnitudes have three decimals; some are upper
    limits (``ph_qual`` ``U``, no error).

    Returns
    -------
    stars : `~astropy.table.Table`
        Star-table columns plus ``ra``, ``dec`` (ICRS deg) and ``designation``.

    Examples
    --------
    A local photometry source made of random stars, for tests that need no server:

    >>> from cnnext.photometry import TableSource
    >>> from cnnext.testing.servers import random_stars
    >>> stars = random_stars(2000, seed=1)
    >>> len(stars), sorted(stars.colnames)[:4]
    (2000, ['H', 'J', 'Ks', 'b'])
    >>> source = TableSource(stars)
    """
    rng = np.random.default_rng(seed)
    lon = rng.uniform(l[0], l[1], n)
    sinb = rng.uniform(np.sin(np.radians(b[0])), np.sin(np.radians(b[1])), n)
    lat = np.degrees(np.arcsin(sinb))
    if whole_cells is not None:
        from ..healpix import cell_centres, lonlat_to_cells

        # the centre of a random order+6 sub-cell: far (> 10 arcsec) from any
        # border, so the rounding below keeps the star in its cell
        cells = lonlat_to_cells(lon, lat, whole_cells)
        fine = cells * 4**6 + rng.integers(0, 4**6, n)
        lon, lat = cell_centres(fine, whole_cells + 6)
        # a few arcsec of jitter, so that no two stars share a position (and a
        # 2MASS designation); a star it would move out of its cell stays put
        jl = lon + rng.uniform(-0.0015, 0.0015, n)
        jb = lat + rng.uniform(-0.0015, 0.0015, n)
        stay = lonlat_to_cells(jl, jb, whole_cells) == cells
        lon, lat = np.where(stay, jl, lon), np.where(stay, jb, lat)
    icrs = SkyCoord(lon * u.deg, lat * u.deg, frame="galactic").icrs
    ra = np.round(icrs.ra.to_value(u.deg), 6)
    dec = np.round(icrs.dec.to_value(u.deg), 6)
    gal = SkyCoord(ra * u.deg, dec * u.deg, frame="icrs").galactic
    ks = rng.uniform(6.0, 15.5, n)
    jk = rng.gamma(2.0, 0.4, n)
    hk = 0.35 * jk + rng.normal(0.0, 0.05, n)
    mags = {"J": ks + jk, "H": ks + hk, "Ks": ks}
    t = Table()
    t["l"] = gal.l.to_value(u.deg)
    t["b"] = gal.b.to_value(u.deg)
    qual = np.full((n, 3), "A")
    for band in ("J", "H", "Ks"):
        t[band] = np.round(mags[band], 3)
    for k, band in enumerate(("J", "H", "Ks")):
        err = np.round(0.02 + 0.1 * np.exp(mags[band] - 16.0), 3)
        upper = rng.random(n) < upper_limit_fraction
        err[upper] = np.nan
        qual[upper, k] = "U"
        qual[~upper & (err > 0.1), k] = "C"
        t[f"e_{band}"] = err
    t["ph_qual"] = np.array(["".join(r) for r in qual])
    cc = np.where(rng.random(n) < 0.05, "c00", "000")
    t["cc_flg"] = cc
    t["ra"] = ra
    t["dec"] = dec
    t["designation"] = _designations(ra, dec)
    return t


def _fmt(values, fmt):
    """Format a float column, NaN as an empty cell (VizieR's null)."""
    return ["" if not np.isfinite(v) else fmt % v for v in values]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body go out in two writes: without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add 40 ms to every answer
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.server.owner._handle(self, "GET")

    def do_POST(self):
        self.server.owner._handle(self, "POST")


class _FakeServer:
    """Threaded HTTP(S) server answering cone searches over a star table."""

    _path = "/"
    _tls = False

    def __init__(self, stars, *, faults=(), fail_rate=0.0, fail_status=500, seed=0,
                 hang_seconds=30.0):
        if not isinstance(stars, Table):
            raise TypeError(f"stars must be an astropy Table, got {type(stars).__name__}")
        stars = Table(stars, copy=True, masked=False)
        for name in ("J", "H", "Ks", "e_J", "e_H", "e_Ks"):
            if name in stars.colnames:  # masked values are served as empty cells
                stars[name] = np.ma.filled(np.ma.asarray(stars[name], dtype=float), np.nan)
        if "ra" not in stars.colnames or "dec" not in stars.colnames:
            icrs = SkyCoord(np.asarray(stars["l"]) * u.deg, np.asarray(stars["b"]) * u.deg,
                            frame="galactic").icrs
            stars["ra"] = np.round(icrs.ra.to_value(u.deg), 6)
            stars["dec"] = np.round(icrs.dec.to_value(u.deg), 6)
        if "designation" not in stars.colnames:
            stars["designation"] = _designations(stars["ra"], stars["dec"])
        for name in ("ph_qual", "cc_flg"):
            if name not in stars.colnames:
                stars[name] = np.full(len(stars), "AAA" if name == "ph_qual" else "000")
        self.stars = stars
        ra = np.radians(np.asarray(stars["ra"], dtype=float))
        dec = np.radians(np.asarray(stars["dec"], dtype=float))
        self._xyz = np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra),
                              np.sin(dec)], axis=1)
        for fault in faults:
            self._check_fault(fault)
        #: Faults still to be served, one per request, in order (append to add more).
        self.faults = deque(faults)
        self.fail_rate = float(fail_rate)
        self.fail_status = int(fail_status)
        self.hang_seconds = float(hang_seconds)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        #: One dict per request received: method, path, parameters, rows, fault.
        self.requests = []
        self._httpd = None
        self._thread = None
        self._tmpdir = None

    @staticmethod
    def _check_fault(fault):
        if not (isinstance(fault, int) or fault in FAULTS):
            raise ValueError(f"unknown fault {fault!r}; use an HTTP status or one of {FAULTS}")

    # -- life cycle -------------------------------------------------------------------

    def start(self):
        """Start serving in a background thread; returns self."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        if self._tls:
            import trustme

            self._tmpdir = tempfile.mkdtemp(prefix="cnnext-fake-")
            ca = trustme.CA()
            cert = ca.issue_cert("127.0.0.1", "localhost")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            cert.configure_cert(ctx)
            self.ca_bundle = os.path.join(self._tmpdir, "ca.pem")
            ca.cert_pem.write_to_path(self.ca_bundle)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Stop serving (hanging requests are released) and remove temporary files."""
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def host_port(self):
        """``"127.0.0.1:PORT"``."""
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def url(self):
        """Base URL of the service."""
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host_port}{self._path}"

    @property
    def n_requests(self):
        """Number of requests received so far."""
        return len(self.requests)

    # -- answering --------------------------------------------------------------------

    def _next_fault(self):
        with self._lock:
            if self.faults:
                return self.faults.popleft()
            if self.fail_rate and self._rng.random() < self.fail_rate:
                return self.fail_status
            return "ok"

    def _cone(self, ra, dec, radius):
        """Indices of stars within ``radius`` deg of (ra, dec), nearest first."""
        ra, dec = np.radians(ra), np.radians(dec)
        centre = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
        cosd = np.clip(self._xyz @ centre, -1.0, 1.0)
        inside = np.flatnonzero(cosd >= np.cos(np.radians(radius)))
        return inside[np.argsort(-cosd[inside], kind="stable")]

    def _handle(self, handler, method):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = {"method": method, "path": handler.path, "params": {}, "n_rows": 0,
                  "truncated": False}
        fault = self._next_fault()
        record["fault"] = fault
        with self._lock:
            self.requests.append(record)
        if fault == "hang":
            self._stop.wait(self.hang_seconds)
            handler.close_connection = True
            return
        if isinstance(fault, int) or fault.startswith("http"):
            code = fault if isinstance(fault, int) else int(fault[4:])
            return self._send(handler, code, f"<html><body>Error {code}</body></html>"
                              .encode(), "text/html")
        try:
            code, payload = self._answer(handler.path, body, record, error=fault == "error")
        except Exception as exc:  # a bug in the fake must be visible to the test
            record["exception"] = repr(exc)
            return self._send(handler, 500, repr(exc).encode(), "text/plain")
        if fault == "cutoff":
            handler.send_response(code)
            handler.send_header("Content-Type", "text/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload[: len(payload) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if fault == "garbled":
            payload = payload[: len(payload) // 2]
        self._send(handler, code, payload, "text/xml")

    @staticmethod
    def _send(handler, code, payload, ctype):
        handler.send_response(code)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, path, body, record, *, error):
        raise NotImplementedError


class FakeVizier(_FakeServer):
    """
    A fake VizieR serving one catalogue (``II/246/out``) over HTTPS on 127.0.0.1.

    Answers astroquery's ``POST /viz-bin/votable`` ASU scripts (``-source``,
    ``-out.max``, ``-c``, ``-c.rd``/``-c.rm``/``-c.rs``) with VizieR-format
    VOTables, nearest stars first; more matches than ``-out.max`` give the first
    ``-out.max`` rows and ``QUERY_STATUS=OVERFLOW``, as VizieR does. Another
    catalogue gets VizieR's error document.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Star table (``l``, ``b``, magnitudes, errors, flags; optionally ``ra``,
        ``dec`` and ``designation``, computed when missing) — e.g. `random_stars`.
    faults : sequence
        Faults to serve to the first requests, in order (see `FAULTS`); the
        deque ``server.faults`` can be extended later.
    fail_rate : float
        After ``faults`` run out, answer this fraction of requests with
        ``fail_status`` (random, reproducible with ``seed``).
    fail_status : int
        HTTP status of random failures (default 500).
    seed : int
        Seed of the random failures.
    hang_seconds : float
        How long a ``"hang"`` fault holds the connection (it is released when the
        server stops).
    catalog : str
        Catalogue served.

    Attributes
    ----------
    host_port : str
        ``"127.0.0.1:PORT"``, what ``Vizier(vizier_server=...)`` takes.
    ca_bundle : str
        CA certificate that signed the server's certificate (for ``verify=`` or
        ``REQUESTS_CA_BUNDLE``).
    requests : list of dict
        Each request: ``params`` (the ASU lines), ``ra``, ``dec``, ``radius``,
        ``n_match``, ``n_rows``, ``truncated``, ``fault``.
    """

    _path = "/viz-bin/votable"
    _tls = True

    def __init__(self, stars, *, catalog="II/246/out", **kwargs):
        super().__init__(stars, **kwargs)
        self.catalog = catalog

    def source(self, **kwargs):
        """Return a `~cnnext.photometry.VizierSource` that talks to this server."""
        from ..photometry.vizier import VizierSource

        kwargs.setdefault("catalog", self.catalog)
        return VizierSource(server=self.host_port, verify=self.ca_bundle, **kwargs)

    def _answer(self, path, body, record, *, error):
        if not path.startswith("/viz-bin/votable"):
            return 404, b"not found"
        params = {}
        for line in body.decode("utf-8", "replace").splitlines():
            key, _, value = line.partition("=")
            params[key.strip()] = value.strip()
        record["params"] = params
        if error or params.get("-source") != self.catalog:
            reason = "simulated failure" if error else \
                f"Unknown catalogue {params.get('-source')!r}"
            return 200, self._error_votable(reason)
        match = re.fullmatch(r"(G?)([0-9.]+)([+-][0-9.]+)", params.get("-c", ""))
        radius = None
        for key, scale in (("-c.rd", 1.0), ("-c.rm", 1 / 60), ("-c.rs", 1 / 3600)):
            if key in params:
                radius = float(params[key]) * scale
        if match is None or radius is None:
            return 200, self._error_votable(f"cannot parse position {params.get('-c')!r} "
                                            f"or radius")
        lon, lat = float(match.group(2)), float(match.group(3))
        if match.group(1):
            icrs = SkyCoord(lon * u.deg, lat * u.deg, frame="galactic").icrs
            lon, lat = icrs.ra.deg, icrs.dec.deg
        rows = self._cone(lon, lat, radius)
        out_max = params.get("-out.max", "50")
        limit = len(rows) if out_max == "unlimited" else int(out_max)
        truncated = len(rows) > limit
        record.update(ra=lon, dec=lat, radius=radius, n_match=len(rows),
                      n_rows=min(limit, len(rows)), truncated=truncated)
        return 200, self._votable(rows[:limit], truncated, limit)

    def _error_votable(self, reason):
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
                f' <DESCRIPTION>VizieR Astronomical Server (cnnext fake)</DESCRIPTION>\n'
                f'<INFO name="QUERY_STATUS" value="ERROR">\n{escape(reason)}\n</INFO>\n'
                f'</VOTABLE>\n').encode()

    def _votable(self, rows, truncated, limit):
        s = self.stars
        cols = [
            ("RAJ2000", 'datatype="double" width="10" precision="6" unit="deg"',
             _fmt(np.asarray(s["ra"])[rows], "%.6f")),
            ("DEJ2000", 'datatype="double" width="10" precision="6" unit="deg"',
             _fmt(np.asarray(s["dec"])[rows], "%.6f")),
            ("2MASS", 'datatype="char" arraysize="17"',
             [escape(str(v)) for v in np.asarray(s["designation"])[rows]]),
        ]
        for band, name in (("J", "J"), ("H", "H"), ("Ks", "K")):
            cols.append((f"{name}mag", 'datatype="float" width="6" precision="3" unit="mag"',
                         _fmt(np.asarray(s[band], dtype=float)[rows], "%.3f")))
            cols.append((f"e_{name}mag", 'datatype="float" width="6" precision="3" '
                         'unit="mag"', _fmt(np.asarray(s[f"e_{band}"], dtype=float)[rows],
                                            "%.3f")))
        cols.append(("Qflg", 'datatype="char" arraysize="3"',
                     [str(v) for v in np.asarray(s["ph_qual"])[rows]]))
        cols.append(("Cflg", 'datatype="char" arraysize="3"',
                     [str(v) for v in np.asarray(s["cc_flg"])[rows]]))
        fields = "\n".join(f'<FIELD name="{n}" {attrs}/>' for n, attrs, _ in cols)
        data = "\n".join("<TR>" + "".join(f"<TD>{v}</TD>" for v in row) + "</TR>"
                         for row in zip(*(c[2] for c in cols)))
        overflow = (f'<INFO name="QUERY_STATUS" value="OVERFLOW">truncated result '
                    f'(maximum: {limit} records)</INFO>\n') if truncated else ""
        cat = escape(self.catalog)
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
                f' <DESCRIPTION>VizieR Astronomical Server (cnnext fake)</DESCRIPTION>\n'
                f'<INFO ID="MaxTuples" name="-out.max" value="{limit}"/>\n'
                f'<RESOURCE ID="yCat_2246" name="{cat.rsplit("/", 1)[0]}">\n'
                f'<COOSYS ID="J2000" system="eq_FK5" equinox="J2000"/>\n'
                f'<TABLE ID="{cat.replace("/", "_")}" name="{cat}">\n{fields}\n'
                f'<DATA><TABLEDATA>\n{data}\n</TABLEDATA></DATA>\n</TABLE>\n'
                f'{overflow}</RESOURCE>\n</VOTABLE>\n')
        return text.encode()


class FakeIrsa(_FakeServer):
    """
    A fake IRSA TAP service with the 2MASS table ``fp_psc``, on http://127.0.0.1.

    Answers pyvo's synchronous ``POST /TAP/sync`` (form-encoded ``QUERY``,
    ``MAXREC``) for ADQL of the form ``SELECT [TOP n] cols FROM fp_psc WHERE
    CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', ra0, dec0, r)) = 1`` with
    TAP VOTables (``RESOURCE type="results"``, ``QUERY_STATUS`` ``OK``,
    ``OVERFLOW`` after the table when ``MAXREC`` cut it, ``ERROR`` with HTTP 400
    for queries it cannot run). Parameters as for `FakeVizier`.

    Attributes
    ----------
    tap_url : str
        ``http://127.0.0.1:PORT/TAP``.
    """

    _path = "/TAP"
    _columns = {
        "ra": ("double", "deg", lambda s: s["ra"], "%.7f"),
        "dec": ("double", "deg", lambda s: s["dec"], "%.7f"),
        "glon": ("double", "deg", lambda s: s["l"], "%.17g"),
        "glat": ("double", "deg", lambda s: s["b"], "%.17g"),
        "designation": ("char", None, lambda s: s["designation"], "%s"),
        "j_m": ("double", "mag", lambda s: s["J"], "%.3f"),
        "j_msigcom": ("double", "mag", lambda s: s["e_J"], "%.3f"),
        "h_m": ("double", "mag", lambda s: s["H"], "%.3f"),
        "h_msigcom": ("double", "mag", lambda s: s["e_H"], "%.3f"),
        "k_m": ("double", "mag", lambda s: s["Ks"], "%.3f"),
        "k_msigcom": ("double", "mag", lambda s: s["e_Ks"], "%.3f"),
        "ph_qual": ("char", None, lambda s: s["ph_qual"], "%s"),
        "cc_flg": ("char", None, lambda s: s["cc_flg"], "%s"),
    }

    @property
    def tap_url(self):
        """The TAP base URL, for ``IrsaSource(tap_url=...)``."""
        return self.url

    def source(self, **kwargs):
        """Return a `~cnnext.photometry.IrsaSource` that talks to this server."""
        from ..photometry.irsa import IrsaSource

        return IrsaSource(tap_url=self.tap_url, **kwargs)

    def _answer(self, path, body, record, *, error):
        if not path.rstrip("/").endswith("/TAP/sync"):
            return 404, b"not found"
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        record["params"] = form
        query = form.get("QUERY", "")
        if error:
            return 400, self._error_votable("simulated failure")
        m = re.match(r"\s*SELECT\s+(?:TOP\s+(\d+)\s+)?(.*?)\s+FROM\s+(\S+)\s+WHERE\s+(.*)$",
                     query, re.I | re.S)
        if not m:
            return 400, self._error_votable(f"cannot parse ADQL: {query!r}")
        top, cols, table, where = m.groups()
        if table.lower() != "fp_psc":
            return 400, self._error_votable(f"table {table!r} does not exist")
        cols = [c.strip().lower() for c in cols.split(",")]
        unknown = [c for c in cols if c not in self._columns]
        if unknown:
            return 400, self._error_votable(f"unknown columns {unknown}")
        num = r"\s*([-+0-9.eE]+)\s*"
        c = re.search(r"CIRCLE\(\s*'ICRS'\s*," + num + "," + num + "," + num + r"\)", where,
                      re.I)
        if not c:
            return 400, self._error_votable("only CONTAINS(POINT, CIRCLE('ICRS', ...)) "
                                            "is supported")
        ra, dec, radius = (float(v) for v in c.groups())
        rows = self._cone(ra, dec, radius)
        limit = len(rows)
        if top:
            limit = min(limit, int(top))
        maxrec = form.get("MAXREC")
        truncated = False
        if maxrec is not None and int(maxrec) < limit:
            limit, truncated = int(maxrec), True
        record.update(ra=ra, dec=dec, radius=radius, n_match=len(rows), n_rows=limit,
                      truncated=truncated)
        return 200, self._votable(cols, rows[:limit], truncated)

    def _error_votable(self, reason):
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                f'<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
                f'<RESOURCE type="results">\n'
                f'<INFO name="QUERY_STATUS" value="ERROR">{escape(reason)}</INFO>\n'
                f'</RESOURCE>\n</VOTABLE>\n').encode()

    def _votable(self, cols, rows, truncated):
        fields, values = [], []
        for name in cols:
            dtype, unit, get, fmt = self._columns[name]
            attrs = f'datatype="{dtype}"' + (' arraysize="*"' if dtype == "char" else "") + \
                (f' unit="{unit}"' if unit else "")
            fields.append(f'<FIELD name="{name}" {attrs}/>')
            col = np.asarray(get(self.stars))[rows]
            if dtype == "char":
                values.append([escape(str(v)) for v in col])
            else:
                values.append(_fmt(col.astype(float), fmt))
        data = "\n".join("<TR>" + "".join(f"<TD>{v}</TD>" for v in row) + "</TR>"
                         for row in zip(*values))
        overflow = '<INFO name="QUERY_STATUS" value="OVERFLOW"/>\n' if truncated else ""
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
                '<RESOURCE type="results">\n<INFO name="QUERY_STATUS" value="OK"/>\n'
                '<TABLE>\n' + "\n".join(fields) + '\n<DATA><TABLEDATA>\n'
                f'{data}\n</TABLEDATA></DATA>\n</TABLE>\n{overflow}</RESOURCE>\n'
                f'</VOTABLE>\n')
        return text.encode()
