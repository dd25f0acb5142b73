import json


def encode(value):
    return json.dumps(value)
