def route(url):
    return "hello from " + url
