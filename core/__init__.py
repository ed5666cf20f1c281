"""Domain library: video decoding, the volume store, synthetic data, models, triage policy.

Knows nothing of Streamlit or SQL.
"""
