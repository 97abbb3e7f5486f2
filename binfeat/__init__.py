"""The ``binfeat`` command: one entry point above every other package (see :mod:`binfeat.cli`).

The layering is binfeat -> benchmarks -> jobs -> extract: the command may dispatch to any of them,
and none of them imports it.
"""
