"""dolphin.core"""
