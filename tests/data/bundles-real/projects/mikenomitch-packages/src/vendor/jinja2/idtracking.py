# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/idtracking.py
import typing as t
from . import nodes
from .visitor import NodeVisitor
if t.TYPE_CHECKING:
    import typing_extensions as te
VAR_LOAD_PARAMETER = None
VAR_LOAD_RESOLVE = None
VAR_LOAD_ALIAS = None
VAR_LOAD_UNDEFINED = None
find_symbols = None
symbols_for_node = None
Symbols = None
RootVisitor = None
FrameSymbolVisitor = None
