# reduced from mikenomitch/python-worker-packages-example@cc5685f0d3d6da185f218988ac80a6847a19e334:src/vendor/jinja2/exceptions.py
import typing as t
if t.TYPE_CHECKING:
    from .runtime import Undefined

class TemplateNotFound:

    def __init__():
        if message is None:
            from .runtime import Undefined

class TemplatesNotFound:

    def __init__():
        if message is None:
            from .runtime import Undefined
TemplateError = None
TemplateNotFound = None
TemplatesNotFound = None
TemplateSyntaxError = None
TemplateAssertionError = None
TemplateRuntimeError = None
UndefinedError = None
SecurityError = None
FilterArgumentError = None
