# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The synthetic sky as a photometry source.

`MockSky` lives in `cnnext.synthetic.mocksky` (it needs the Galaxy model) and
implements the photometry-source contract of `cnnext.stars`, which sits below both
packages: the synthetic sky never imports `cnnext.photometry`. It is re-exported here
so that every photometry source is found under `cnnext.photometry`.
"""

from ..synthetic.mocksky import MockSky

__all__ = ["MockSky"]
