NAME = "tinyjson"
