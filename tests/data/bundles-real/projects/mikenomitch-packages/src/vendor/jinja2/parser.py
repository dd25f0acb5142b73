# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/parser.py
import typing
import typing as t
from . import nodes
from .exceptions import TemplateAssertionError
from .exceptions import TemplateSyntaxError
from .lexer import describe_token
from .lexer import describe_token_expr
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment
_ImportInclude = None
_MacroCall = None
_statement_keywords = None
_compare_operators = None
_math_nodes = None
Parser = None
