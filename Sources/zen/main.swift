print("zen")
