"""Attacks on an edited model: does the removal last? (issue 16). Each attack works on copies of
the model and scores them with the suite's memorization tasks; see attacks/base.py and
docs/attacks.md."""
