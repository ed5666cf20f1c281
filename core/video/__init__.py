"""Stack files in, stored volumes out: decode an ``.mp4``, find the orange outline, crop, store.

``mp4`` encodes and decodes frames, ``crop`` turns one stack into its region of interest
(``CroppedStack``), ``straighten`` follows the outlined vessel's centreline, ``store`` keeps the
crops in LMDB, ``ingest`` runs decode → store in parallel.
"""
