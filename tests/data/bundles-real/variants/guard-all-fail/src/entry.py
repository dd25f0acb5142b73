try:
    from .api import app
except ImportError:
    from apii import app
