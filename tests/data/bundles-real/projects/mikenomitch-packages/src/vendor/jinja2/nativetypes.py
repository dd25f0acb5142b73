# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/nativetypes.py
import typing as t
from ast import literal_eval
from ast import parse
from itertools import chain
from itertools import islice
from types import GeneratorType
from . import nodes
from .compiler import CodeGenerator
from .compiler import Frame
from .compiler import has_safe_repr
from .environment import Environment
from .environment import Template
native_concat = None
NativeCodeGenerator = None
NativeEnvironment = None
NativeTemplate = None
