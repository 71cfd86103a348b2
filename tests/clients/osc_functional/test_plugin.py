"""osc-placement 4.9.1's functional tests: the plugin's options in ``openstack --help``."""

# pytest collects the imported TestCase classes as this module's items.
from osc_placement.tests.functional.test_plugin import *
