"""Domain library, in rooms: ``video`` (stack files → stored crops), ``synth`` (the synthetic
generator), ``model`` (input, networks, runs, inference), ``labels`` (answers and their trust),
``policy`` (the triage band, its tuning and bounds); ``metrics`` is the statistics they share.

Knows nothing of Streamlit or SQL.
"""
