"""dolphin.data"""
