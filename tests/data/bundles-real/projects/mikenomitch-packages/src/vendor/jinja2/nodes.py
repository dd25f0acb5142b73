# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/nodes.py
import inspect
import operator
import typing as t
from collections import deque
from markupsafe import Markup
from .utils import _PassArg
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment

class Const:

    def from_untrusted():
        from .compiler import has_safe_repr
_NodeBound = None
_binop_to_func = None
_uaop_to_func = None
_cmpop_to_func = None
Impossible = None
NodeType = None
EvalContext = None
get_eval_context = None
Node = None
Stmt = None
Helper = None
Template = None
Output = None
Extends = None
For = None
If = None
Macro = None
CallBlock = None
FilterBlock = None
With = None
Block = None
Include = None
Import = None
FromImport = None
ExprStmt = None
Assign = None
AssignBlock = None
Expr = None
BinExpr = None
UnaryExpr = None
Name = None
NSRef = None
Literal = None
Const = None
TemplateData = None
Tuple = None
List = None
Dict = None
Pair = None
Keyword = None
CondExpr = None
args_as_const = None
_FilterTestCommon = None
Filter = None
Test = None
Call = None
Getitem = None
Getattr = None
Slice = None
Concat = None
Compare = None
Operand = None
Mul = None
Div = None
FloorDiv = None
Add = None
Sub = None
Mod = None
Pow = None
And = None
Or = None
Not = None
Neg = None
Pos = None
EnvironmentAttribute = None
ExtensionAttribute = None
ImportedName = None
InternalName = None
MarkSafe = None
MarkSafeIfAutoescape = None
ContextReference = None
DerivedContextReference = None
Continue = None
Break = None
Scope = None
OverlayScope = None
EvalContextModifier = None
ScopedEvalContextModifier = None
_failing_new = None
