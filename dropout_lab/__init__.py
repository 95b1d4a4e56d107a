"""dropout-lab: sweep the dropout probability p, train MLPs, measure the gap and co-adaptation.

p is always the probability of DROPPING a unit: a' = 0 with probability p, else a / (1 - p).
"""

__version__ = "0.1.0"
