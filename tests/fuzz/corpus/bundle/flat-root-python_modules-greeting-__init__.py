def hello():
    return " hello "
