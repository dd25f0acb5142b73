# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/sandbox.py
import operator
import types
import typing as t
from _string import formatter_field_name_split
from collections import abc
from collections import deque
from functools import update_wrapper
from string import Formatter
from markupsafe import EscapeFormatter
from markupsafe import Markup
from .environment import Environment
from .exceptions import SecurityError
from .runtime import Context
from .runtime import Undefined
F = None
MAX_RANGE = None
UNSAFE_FUNCTION_ATTRIBUTES = None
UNSAFE_METHOD_ATTRIBUTES = None
UNSAFE_GENERATOR_ATTRIBUTES = None
UNSAFE_COROUTINE_ATTRIBUTES = None
UNSAFE_ASYNC_GENERATOR_ATTRIBUTES = None
_mutable_spec = None
safe_range = None
unsafe = None
is_internal_attribute = None
modifies_known_mutable = None
SandboxedEnvironment = None
ImmutableSandboxedEnvironment = None
SandboxedFormatter = None
SandboxedEscapeFormatter = None
