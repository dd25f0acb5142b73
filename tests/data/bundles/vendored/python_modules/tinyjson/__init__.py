NAME = "tinyjson"
