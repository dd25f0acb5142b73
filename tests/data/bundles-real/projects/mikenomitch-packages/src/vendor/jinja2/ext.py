# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/ext.py
import pprint
import re
import typing as t
from markupsafe import Markup
from . import defaults
from . import nodes
from .environment import Environment
from .exceptions import TemplateAssertionError
from .exceptions import TemplateSyntaxError
from .runtime import concat
from .runtime import Context
from .runtime import Undefined
from .utils import import_string
from .utils import pass_context
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .lexer import Token
    from .lexer import TokenStream
    from .parser import Parser

class InternationalizationExtension:

    def _install_null():
        import gettext
_TranslationsBasic = None
_TranslationsContext = None
_SupportedTranslations = None
GETTEXT_FUNCTIONS = None
_ws_re = None
Extension = None
_gettext_alias = None
_make_new_gettext = None
_make_new_ngettext = None
_make_new_pgettext = None
_make_new_npgettext = None
InternationalizationExtension = None
ExprStmtExtension = None
LoopControlExtension = None
DebugExtension = None
extract_from_ast = None
_CommentFinder = None
babel_extract = None
i18n = None
do = None
loopcontrols = None
debug = None
