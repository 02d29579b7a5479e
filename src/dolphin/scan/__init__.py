"""dolphin.scan"""
