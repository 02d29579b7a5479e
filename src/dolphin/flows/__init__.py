"""dolphin.flows"""
