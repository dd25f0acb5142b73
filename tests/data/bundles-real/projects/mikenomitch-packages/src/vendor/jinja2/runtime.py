# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/runtime.py
import functools
import sys
import typing as t
from collections import abc
from itertools import chain
from markupsafe import escape
from markupsafe import Markup
from markupsafe import soft_str
from .async_utils import auto_aiter
from .async_utils import auto_await
from .exceptions import TemplateNotFound
from .exceptions import TemplateRuntimeError
from .exceptions import UndefinedError
from .nodes import EvalContext
from .utils import _PassArg
from .utils import concat
from .utils import internalcode
from .utils import missing
from .utils import Namespace
from .utils import object_type_repr
from .utils import pass_eval_context
if t.TYPE_CHECKING:
    import logging
    import typing_extensions as te
    from .environment import Environment

def make_logging_undefined():
    if logger is None:
        import logging
V = None
F = None
LoopRenderFunc = None
exported = None
async_exported = None
identity = None
markup_join = None
str_join = None
new_context = None
TemplateReference = None
_dict_method_all = None
Context = None
BlockReference = None
LoopContext = None
AsyncLoopContext = None
Macro = None
Undefined = None
make_logging_undefined = None
ChainableUndefined = None
DebugUndefined = None
StrictUndefined = None
