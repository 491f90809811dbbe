"""Studies: commands built on the runner (harness/), one per question: the fidelity check of the
model organism against the paper's findings (fidelity), the spectrum analysis of what an edit
removes (analyze), and mining memorized passages from a corpus (mine)."""
