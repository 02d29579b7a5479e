"""dolphin.forewarn"""
