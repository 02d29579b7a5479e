"""dolphin.execution"""
