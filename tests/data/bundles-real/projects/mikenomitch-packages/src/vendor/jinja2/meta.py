# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/meta.py
import typing as t
from . import nodes
from .compiler import CodeGenerator
from .compiler import Frame
if t.TYPE_CHECKING:
    from .environment import Environment
TrackingCodeGenerator = None
find_undeclared_variables = None
_ref_types = None
_RefType = None
find_referenced_templates = None
