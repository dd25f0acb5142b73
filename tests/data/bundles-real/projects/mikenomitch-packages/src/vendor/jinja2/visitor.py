# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/visitor.py
import typing as t
from .nodes import Node
if t.TYPE_CHECKING:
    import typing_extensions as te
VisitCallable = None
NodeVisitor = None
NodeTransformer = None
