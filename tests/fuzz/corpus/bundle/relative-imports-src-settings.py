DEBUG = False
