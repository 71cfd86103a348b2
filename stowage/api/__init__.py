"""HTTP layer: app factory, routes, handlers, microversions, errors."""
