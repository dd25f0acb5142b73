# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/loaders.py
import importlib.util
import os
import posixpath
import sys
import typing as t
import weakref
import zipimport
from collections import abc
from hashlib import sha1
from importlib import import_module
from types import ModuleType
from .exceptions import TemplateNotFound
from .utils import internalcode
if t.TYPE_CHECKING:
    from .environment import Environment
    from .environment import Template
split_template_path = None
BaseLoader = None
FileSystemLoader = None
_get_zipimporter_files = None
PackageLoader = None
DictLoader = None
FunctionLoader = None
PrefixLoader = None
ChoiceLoader = None
_TemplateModule = None
ModuleLoader = None
