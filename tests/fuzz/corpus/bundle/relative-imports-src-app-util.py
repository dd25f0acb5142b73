def helper(x):
    return str(x)
