"""The model: its input, its networks, a run's members and what they say about a stack.

``preprocess`` turns a stored crop into the network's input (depth scheme, slice view, padding
with a mask); ``nets`` is the architecture registry and checkpoints; ``rundir`` the layout of a
self-describing run directory; ``predict`` the ensemble + TTA inference; ``saliency`` its 3D
Grad-CAM mapped back onto the slices.
"""
