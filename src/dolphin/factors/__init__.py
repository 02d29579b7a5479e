"""dolphin.factors"""
