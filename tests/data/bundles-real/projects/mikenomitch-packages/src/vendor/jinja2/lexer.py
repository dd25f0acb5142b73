# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/lexer.py
import re
import typing as t
from ast import literal_eval
from collections import deque
from sys import intern
from ._identifier import pattern as name_re
from .exceptions import TemplateSyntaxError
from .utils import LRUCache
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment
_lexer_cache = None
whitespace_re = None
newline_re = None
string_re = None
integer_re = None
float_re = None
TOKEN_ADD = None
TOKEN_ASSIGN = None
TOKEN_COLON = None
TOKEN_COMMA = None
TOKEN_DIV = None
TOKEN_DOT = None
TOKEN_EQ = None
TOKEN_FLOORDIV = None
TOKEN_GT = None
TOKEN_GTEQ = None
TOKEN_LBRACE = None
TOKEN_LBRACKET = None
TOKEN_LPAREN = None
TOKEN_LT = None
TOKEN_LTEQ = None
TOKEN_MOD = None
TOKEN_MUL = None
TOKEN_NE = None
TOKEN_PIPE = None
TOKEN_POW = None
TOKEN_RBRACE = None
TOKEN_RBRACKET = None
TOKEN_RPAREN = None
TOKEN_SEMICOLON = None
TOKEN_SUB = None
TOKEN_TILDE = None
TOKEN_WHITESPACE = None
TOKEN_FLOAT = None
TOKEN_INTEGER = None
TOKEN_NAME = None
TOKEN_STRING = None
TOKEN_OPERATOR = None
TOKEN_BLOCK_BEGIN = None
TOKEN_BLOCK_END = None
TOKEN_VARIABLE_BEGIN = None
TOKEN_VARIABLE_END = None
TOKEN_RAW_BEGIN = None
TOKEN_RAW_END = None
TOKEN_COMMENT_BEGIN = None
TOKEN_COMMENT_END = None
TOKEN_COMMENT = None
TOKEN_LINESTATEMENT_BEGIN = None
TOKEN_LINESTATEMENT_END = None
TOKEN_LINECOMMENT_BEGIN = None
TOKEN_LINECOMMENT_END = None
TOKEN_LINECOMMENT = None
TOKEN_DATA = None
TOKEN_INITIAL = None
TOKEN_EOF = None
operators = None
reverse_operators = None
operator_re = None
ignored_tokens = None
ignore_if_empty = None
_describe_token_type = None
describe_token = None
describe_token_expr = None
count_newlines = None
compile_rules = None
Failure = None
Token = None
TokenStreamIterator = None
TokenStream = None
get_lexer = None
OptionalLStrip = None
_Rule = None
Lexer = None
