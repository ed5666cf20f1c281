"""The answers: where a stack's label comes from and how far to trust it.

``competition`` reads the crowd's answers as published (the competition CSVs); ``records`` is
``StackRecord``, a stack with its known answer as the database hands it on; ``skill`` measures
reviewers on known answers and combines several reviews (Dawid–Skene, ``HumanErrorRates``);
``crowd_errors`` lists crowd answers the model's out-of-fold scores contradict.
"""
