def pad(s):
    return " " + s
