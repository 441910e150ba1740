"""What notebooks use to show results: :mod:`.tables` (paper-vs-ours tables, glue, claim
checks), :mod:`.figures` (the book's figure style) and :mod:`.params` (notebook parameter checks).
"""
