from . import models
from ..util import helper
from .models import Item


def handle(request, debug):
    return helper(Item()) if debug else "ok"


def lazy():
    from ...toplevel import thing  # beyond the top-level package: fails when called
    return thing
