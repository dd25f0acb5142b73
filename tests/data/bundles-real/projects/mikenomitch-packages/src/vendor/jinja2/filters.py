# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/filters.py
import math
import random
import re
import typing
import typing as t
from collections import abc
from itertools import chain
from itertools import groupby
from markupsafe import escape
from markupsafe import Markup
from markupsafe import soft_str
from .async_utils import async_variant
from .async_utils import auto_aiter
from .async_utils import auto_await
from .async_utils import auto_to_list
from .exceptions import FilterArgumentError
from .runtime import Undefined
from .utils import htmlsafe_json_dumps
from .utils import pass_context
from .utils import pass_environment
from .utils import pass_eval_context
from .utils import pformat
from .utils import url_quote
from .utils import urlize
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment
    from .nodes import EvalContext
    from .runtime import Context
    from .sandbox import SandboxedEnvironment

def do_wordwrap():
    import textwrap
HasHTML = None
F = None
K = None
V = None
ignore_case = None
make_attrgetter = None
make_multi_attrgetter = None
_prepare_attribute_parts = None
do_forceescape = None
do_urlencode = None
do_replace = None
do_upper = None
do_lower = None
do_items = None
_attr_key_re = None
do_xmlattr = None
do_capitalize = None
_word_beginning_split_re = None
do_title = None
do_dictsort = None
do_sort = None
sync_do_unique = None
do_unique = None
_min_or_max = None
do_min = None
do_max = None
do_default = None
sync_do_join = None
do_join = None
do_center = None
sync_do_first = None
do_first = None
do_last = None
do_random = None
do_filesizeformat = None
do_pprint = None
_uri_scheme_re = None
do_urlize = None
do_indent = None
do_truncate = None
do_wordwrap = None
_word_re = None
do_wordcount = None
do_int = None
do_float = None
do_format = None
do_trim = None
do_striptags = None
sync_do_slice = None
do_slice = None
do_batch = None
do_round = None
_GroupTuple = None
sync_do_groupby = None
do_groupby = None
sync_do_sum = None
do_sum = None
sync_do_list = None
do_list = None
do_mark_safe = None
do_mark_unsafe = None
do_reverse = None
do_attr = None
sync_do_map = None
do_map = None
sync_do_select = None
do_select = None
sync_do_reject = None
do_reject = None
sync_do_selectattr = None
do_selectattr = None
sync_do_rejectattr = None
do_rejectattr = None
do_tojson = None
prepare_map = None
prepare_select_or_reject = None
select_or_reject = None
async_select_or_reject = None
FILTERS = None
