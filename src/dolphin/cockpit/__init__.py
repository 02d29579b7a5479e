"""dolphin.cockpit"""
