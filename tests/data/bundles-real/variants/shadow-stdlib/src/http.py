def route(): pass
