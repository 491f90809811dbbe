"""lm-eval task files for the organism's question-answering data (see organism.py)."""
