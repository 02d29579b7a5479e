"""dolphin.research"""
