# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration of the cnnext documentation."""

import datetime
import sys
from pathlib import Path

from sphinx_astropy.conf.v2 import *  # noqa: F403
from sphinx_astropy.conf.v2 import exclude_patterns, intersphinx_mapping

import cnnext

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # the build helpers below, and the plot directives

import _generate  # noqa: E402

project = "cnnext"
author = "The cnnext developers"
copyright = f"{datetime.date.today().year}, {author}"
version = cnnext.__version__.split("+")[0]
release = cnnext.__version__

exclude_patterns = list(exclude_patterns) + ["_build", "_generated", "**.ipynb_checkpoints"]
intersphinx_mapping = dict(intersphinx_mapping)
# No network while building the docs in CI: cross-references to other projects stay
# plain text instead of failing the build (the nitpick_ignore list below names them).
intersphinx_mapping.clear()
intersphinx_disabled_reftypes = ["*"]

# --- generated content --------------------------------------------------------------
# Every number that comes from running cnnext (the demo's map and errors, the shipped
# model's metadata, the CLI options) is computed here, at build time, so the pages
# follow the code and the shipped model. The demo runs once per model and cnnext
# version; its output is cached in _build/figure-cache.
FIGURE_CACHE = _generate.prepare(DOCS)
rst_epilog = _generate.substitutions()

# --- figures ------------------------------------------------------------------------
# ``.. plot::`` code runs in the demo's working directory, where ``cnnext demo`` left
# ``cnnext-demo/demo-map.fits``: the code shown is the code a reader runs.
plot_working_directory = str(FIGURE_CACHE)
plot_include_source = False
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 110)]
plot_rcparams = {"figure.dpi": 110, "savefig.bbox": "tight", "font.size": 10}
plot_apply_rcparams = True
plot_pre_code = "import numpy as np\nimport matplotlib.pyplot as plt\n"

# --- theme --------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"cnnext {version}"
html_static_path = ["_static"]
html_css_files = ["cnnext.css"]
html_theme_options = {
    "navigation_with_keys": False,
    # every main section in the top bar, none hidden under "More"
    "header_links_before_dropdown": 8,
    "navbar_align": "left",
    "show_nav_level": 1,
    "navigation_depth": 3,
    "collapse_navigation": False,
    # one sidebar, on the left: section navigation, then this page's contents; the
    # text, code and figures get the rest of the width
    "secondary_sidebar_items": [],
    "show_toc_level": 2,
    "use_edit_page_button": False,
    "icon_links": [],
}
# Pages that are a section of their own have no section navigation: no sidebar at
# all, the text uses the full width.
html_sidebars = {
    "**": ["sidebar-nav-bs", "page-toc"],
    "index": [],
    "cli": ["page-toc"],
    "changes": [],
    "citing": [],
    "contributing": [],
}

# --- API reference ------------------------------------------------------------------
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_show_class_members = False
suppress_warnings = ["config.cache"]

# ``sphinx-build -n`` checks every cross-reference. Without intersphinx (no network in
# CI), references to other projects cannot resolve: they are listed here, so that what
# remains are cnnext's own references, which must all resolve.
nitpicky = False
nitpick_ignore_regex = [
    # private base classes named in the class signatures of public ones
    (r"py:.*", r"cnnext(\.\w+)*\._\w+(\.\w+)*"),
    # a property of FakeVizier's private base class, listed under its Attributes
    (r"py:obj", r"host_port"),
    (r"py:.*", r"(numpy|np|astropy|matplotlib|scipy|pathlib|os|io|json|typing|abc|"
               r"collections|concurrent|dataclasses|argparse|logging|threading|"
               r"dustmaps|regions|mocpy|lsdb|hats|dask|distributed|torch|onnx|"
               r"onnxruntime|astroquery|pyvo|requests|trustme|h5py|pandas|pyarrow|"
               r"dust_extinction|healpy|tqdm|urllib|http|ssl|socket)(\..*)?"),
    (r"py:.*", r"(True|False|None|int|float|str|bytes|bool|dict|list|tuple|set|"
               r"object|callable|iterable|path-like|file-like|array-like|array|"
               r"sequence|mapping|optional|Exception|ValueError|TypeError|KeyError|"
               r"OSError|RuntimeError|ImportError|FileNotFoundError|TimeoutError|"
               r"ConnectionError|Warning|UserWarning)"),
]


_DOCUMENTED = {}


def _documented_objects(env):
    """Map id(python object) -> the name under which the API pages document it."""
    import importlib

    # computed once per build process, when every page has been read (not kept in the
    # pickled environment, where it would go stale between builds)
    if _DOCUMENTED:
        return _DOCUMENTED
    cache = _DOCUMENTED
    for name, entry in env.get_domain("py").objects.items():
        if not name.startswith("cnnext") or entry.objtype == "module":
            continue
        obj = _import_object(name, importlib)
        if obj is None:
            continue
        if hasattr(obj, "__qualname__"):
            cache.setdefault(id(obj), name)
        else:
            # constants (ints, strings) may be shared objects: match name and value
            cache.setdefault((name.rsplit(".", 1)[-1], _key(obj)), name)
    return cache


def _key(obj):
    try:
        hash(obj)
    except TypeError:
        return repr(obj)
    return obj


def _import_object(name, importlib):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_reexported(app, env, node, contnode):
    """
    Resolve a reference to a cnnext object to the page that documents it.

    cnnext re-exports names (``cnnext.CNNExtinctionMap`` is
    ``cnnext.map.CNNExtinctionMap``; ``cnnext.training.fit`` lives in
    ``cnnext.training.train``), and docstrings refer to names of their own module; the
    API pages document each object once. The object is imported and looked up among
    the documented ones.
    """
    import importlib

    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    modname = node.get("py:module") or ""
    classname = node.get("py:class") or ""
    candidates = []
    if target.startswith("cnnext"):
        candidates.append(target)
    if modname.startswith("cnnext"):
        if classname:
            candidates.append(f"{modname}.{classname}.{target}")
        candidates.append(f"{modname}.{target}")
    documented = _documented_objects(env)
    for cand in candidates:
        obj = _import_object(cand, importlib)
        if obj is None:
            continue
        key = id(obj) if hasattr(obj, "__qualname__") else \
            (cand.rsplit(".", 1)[-1], _key(obj))
        name = documented.get(key)
        if name is None or name == cand:
            continue
        return env.get_domain("py").resolve_xref(env, node["refdoc"], app.builder,
                                                 node["reftype"], name, node, contnode)
    # a name of another cnnext module, written short (or with a module path that has
    # moved): resolve it when exactly one documented cnnext object has that name
    if modname.startswith("cnnext") or target.startswith("cnnext."):
        short = target if modname.startswith("cnnext") and not \
            target.startswith("cnnext.") else target.rsplit(".", 1)[-1]
        matches = [n for n, entry in env.get_domain("py").objects.items()
                   if n.startswith("cnnext.") and n.endswith(f".{short}")
                   and not entry.aliased]
        if len(matches) > 1:
            # the same object documented under several names (re-exported): any will do
            objs = [_import_object(n, importlib) for n in matches]
            if all(o is objs[0] for o in objs) and objs[0] is not None:
                matches = sorted(matches, key=len)[:1]
        if len(matches) == 1:
            return env.get_domain("py").resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], matches[0], node,
                contnode)
    return None


def setup(app):
    app.connect("missing-reference", _resolve_reexported)
