# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/bccache.py
import errno
import fnmatch
import marshal
import os
import pickle
import stat
import sys
import tempfile
import typing as t
from hashlib import sha1
from io import BytesIO
from types import CodeType
if t.TYPE_CHECKING:
    import typing_extensions as te
    from .environment import Environment

class FileSystemBytecodeCache:

    def clear():
        from os import remove
_MemcachedClient = None
bc_version = None
bc_magic = None
Bucket = None
BytecodeCache = None
FileSystemBytecodeCache = None
MemcachedBytecodeCache = None
