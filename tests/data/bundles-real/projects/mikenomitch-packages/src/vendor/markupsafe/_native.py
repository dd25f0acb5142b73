# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/markupsafe/_native.py
import typing as t
from . import Markup
escape = None
escape_silent = None
soft_str = None
