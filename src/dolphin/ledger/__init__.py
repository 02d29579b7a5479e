"""dolphin.ledger"""
