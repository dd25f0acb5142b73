# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/compiler.py
import typing as t
from contextlib import contextmanager
from functools import update_wrapper
from io import StringIO
from itertools import chain
from keyword import iskeyword as is_python_keyword
from markupsafe import escape
from markupsafe import Markup
from . import nodes
from .exceptions import TemplateAssertionError
from .idtracking import Symbols
from .idtracking import VAR_LOAD_ALIAS
from .idtracking import VAR_LOAD_PARAMETER
from .idtracking import VAR_LOAD_RESOLVE
from .idtracking import VAR_LOAD_UNDEFINED
from .nodes import EvalContext
from .optimizer import Optimizer
from .utils import _PassArg
from .utils import concat
from .visitor import NodeVisitor
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment

class CodeGenerator:

    def visit_Template():
        from .runtime import async_exported
        from .runtime import exported
F = None
operators = None
optimizeconst = None
_make_binop = None
_make_unop = None
generate = None
has_safe_repr = None
find_undeclared = None
MacroRef = None
Frame = None
VisitorExit = None
DependencyFinderVisitor = None
UndeclaredNameVisitor = None
CompilerExit = None
CodeGenerator = None
