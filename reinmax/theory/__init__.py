"""Theory: what the estimators compute, exactly (reads the estimator library; runs no experiment).

:mod:`.exact` (enumeration: the true gradient, E[estimator], its variance), :mod:`.bias`,
:mod:`.ode` (the one-step rules of Section 4), :mod:`.symbolic` (the sympy derivations) and
:mod:`.algorithms` (Algorithms 1 and 2 as the paper prints them).
"""
