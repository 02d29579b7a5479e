"""dolphin.alpha"""
