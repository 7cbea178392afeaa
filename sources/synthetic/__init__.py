"""The synthetic city: a fictional UK city, its council gazetteer, and the extracts its agencies send.

Everything it writes is synthetic. Ground truth goes to truth/ and is read only by evaluation and tests.
See docs/synthetic-city.md for the layout, formats and columns.
"""

from sources.synthetic._city import CityConfig, CityManifest, generate_city
from sources.synthetic._extracts import NoiseConfig

__all__ = ["CityConfig", "CityManifest", "NoiseConfig", "generate_city"]
