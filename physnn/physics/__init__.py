"""Physics shared across layers: shower shapes and features, separation power (:mod:`physnn.physics.showers`)."""
