# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/async_utils.py
import inspect
import typing as t
from functools import WRAPPER_ASSIGNMENTS
from functools import wraps
from .utils import _PassArg
from .utils import pass_eval_context
if t.TYPE_CHECKING:
    import typing_extensions as te
V = None
async_variant = None
_common_primitives = None
auto_await = None
_IteratorToAsyncIterator = None
auto_aiter = None
auto_to_list = None
