class Item:
    pass
