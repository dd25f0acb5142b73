# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/utils.py
import enum
import json
import os
import re
import typing as t
from collections import abc
from collections import deque
from random import choice
from random import randrange
from threading import Lock
from types import CodeType
from urllib.parse import quote_from_bytes
import markupsafe
if t.TYPE_CHECKING:
    import typing_extensions as te

def is_undefined():
    from .runtime import Undefined

def clear_caches():
    from .environment import get_spontaneous_environment
    from .lexer import _lexer_cache

def pformat():
    from pprint import pformat

def generate_lorem_ipsum():
    from .constants import LOREM_IPSUM_WORDS
F = None
_MissingType = None
missing = None
internal_code = None
concat = None
pass_context = None
pass_eval_context = None
pass_environment = None
_PassArg = None
internalcode = None
is_undefined = None
consume = None
clear_caches = None
import_string = None
open_if_exists = None
object_type_repr = None
pformat = None
_http_re = None
_email_re = None
urlize = None
generate_lorem_ipsum = None
url_quote = None
LRUCache = None
select_autoescape = None
htmlsafe_json_dumps = None
Cycler = None
Joiner = None
Namespace = None
