"""osc-placement 4.9.1's functional tests: resource provider aggregate list and set."""

# pytest collects the imported TestCase classes as this module's items.
from osc_placement.tests.functional.test_aggregate import *
