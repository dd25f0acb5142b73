# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/debug.py
import sys
import typing as t
from types import CodeType
from types import TracebackType
from .exceptions import TemplateSyntaxError
from .utils import internal_code
from .utils import missing
if t.TYPE_CHECKING:
    from .runtime import Context
rewrite_traceback_stack = None
fake_traceback = None
get_template_locals = None
