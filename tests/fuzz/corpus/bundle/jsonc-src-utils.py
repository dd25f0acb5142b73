def greet():
    return "hello"
