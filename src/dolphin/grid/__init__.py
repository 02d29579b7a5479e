"""dolphin.grid"""
