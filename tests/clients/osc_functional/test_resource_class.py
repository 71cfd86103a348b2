"""osc-placement 4.9.1's functional tests: resource class list, show, create, set and delete."""

# pytest collects the imported TestCase classes as this module's items.
from osc_placement.tests.functional.test_resource_class import *
