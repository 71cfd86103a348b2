"""The allocation-candidate engine (request model, stages, combination).

Reserved: the reference implementation and the fast engine land here.
"""
