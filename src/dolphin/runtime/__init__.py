"""dolphin.runtime"""
