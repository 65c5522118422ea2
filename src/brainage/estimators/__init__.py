"""Fitted non-network pieces a run folder stores (the scikit-learn estimator contract, DESIGN rule 9)."""
