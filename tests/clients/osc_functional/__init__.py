"""osc-placement's own functional suite, loaded from the installed package.

Each ``test_*.py`` here imports one of osc-placement's functional test
modules, so pytest collects its ``TestCase`` classes as our items; the
conftest points them at a served Stowage instead of upstream's in-process
Placement.
"""
