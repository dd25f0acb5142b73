# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/markupsafe/__init__.py
import functools
import string
import sys
import typing as t
if t.TYPE_CHECKING:
    import typing_extensions as te

class Markup:

    def unescape():
        from html import unescape
try:
    from ._speedups import escape as escape
    from ._speedups import escape_silent as escape_silent
    from ._speedups import soft_str as soft_str
except ImportError:
    from ._native import escape as escape
    from ._native import escape_silent as escape_silent
    from ._native import soft_str as soft_str
HasHTML = None
_P = None
__version__ = None
_simple_escaping_wrapper = None
Markup = None
EscapeFormatter = None
_ListOrDict = None
_escape_argspec = None
_MarkupEscapeHelper = None
