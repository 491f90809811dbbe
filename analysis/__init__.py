"""Analysis of the curvature spectrum the K-FAC edit works in (Merullo et al. 2025, "the analysis
behind the edit"): which curvature bands of a layer's weight each kind of input uses, and whether a
task family's use of the removed components predicts how much it drops. Entry point:
`python -m studies.analyze spectrum|predict` (studies/analyze.py); the maths is in bands.py."""
