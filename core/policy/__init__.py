"""The triage policy: which stacks the model decides, which go to people, and what that promises.

``band`` is the band rule, once (every threshold comparison); ``triage`` the two-threshold
estimator, its evaluation and tuner, searched by ``pair_search`` and bounded by
``combined_bound``; ``promise`` names what a policy promises, ``relative`` and ``guarantee`` the
two ways of keeping it; ``frontier`` the candidate pairs and what more reference data would buy;
``label_shift`` and ``transfer`` re-read a policy at another stall share; ``gate`` and ``drift``
judge each project under it.
"""
