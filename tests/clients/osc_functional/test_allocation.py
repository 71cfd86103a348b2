"""osc-placement 4.9.1's functional tests: resource provider allocation commands."""

# pytest collects the imported TestCase classes as this module's items.
from osc_placement.tests.functional.test_allocation import *
