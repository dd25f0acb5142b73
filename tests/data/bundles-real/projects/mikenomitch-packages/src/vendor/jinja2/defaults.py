# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/defaults.py
import typing as t
from .filters import FILTERS as DEFAULT_FILTERS
from .tests import TESTS as DEFAULT_TESTS
from .utils import Cycler
from .utils import generate_lorem_ipsum
from .utils import Joiner
from .utils import Namespace
if t.TYPE_CHECKING:
    import typing_extensions as te
BLOCK_START_STRING = None
BLOCK_END_STRING = None
VARIABLE_START_STRING = None
VARIABLE_END_STRING = None
COMMENT_START_STRING = None
COMMENT_END_STRING = None
LINE_STATEMENT_PREFIX = None
LINE_COMMENT_PREFIX = None
TRIM_BLOCKS = None
LSTRIP_BLOCKS = None
NEWLINE_SEQUENCE = None
KEEP_TRAILING_NEWLINE = None
DEFAULT_NAMESPACE = None
DEFAULT_POLICIES = None
