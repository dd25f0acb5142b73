import jinja2.ext
