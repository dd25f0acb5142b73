# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/tests.py
import operator
import typing as t
from collections import abc
from numbers import Number
from .runtime import Undefined
from .utils import pass_environment
if t.TYPE_CHECKING:
    from .environment import Environment
test_odd = None
test_even = None
test_divisibleby = None
test_defined = None
test_undefined = None
test_filter = None
test_test = None
test_none = None
test_boolean = None
test_false = None
test_true = None
test_integer = None
test_float = None
test_lower = None
test_upper = None
test_string = None
test_mapping = None
test_number = None
test_sequence = None
test_sameas = None
test_iterable = None
test_escaped = None
test_in = None
TESTS = None
