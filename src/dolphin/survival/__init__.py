"""dolphin.survival"""
