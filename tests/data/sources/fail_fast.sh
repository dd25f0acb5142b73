#!/bin/sh
# Says why on stderr and fails at once, like `wrangler tail` without credentials.
echo "✘ [ERROR] You must be logged in to use wrangler tail" >&2
exit "${1:-1}"
