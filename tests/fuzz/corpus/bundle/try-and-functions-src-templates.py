def page(data):
    return str(data)
