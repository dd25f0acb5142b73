def hello():
    return " hello "
