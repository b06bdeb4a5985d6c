"""The built-in detector simulator: calorimeter showers and particle-list events.

Used for physnn's demo, tests and benchmarks; writes real ROOT files through
:func:`physnn.api.simulate`.
"""

from physnn.simulation.events import EventConfig, iter_events, simulate_events
from physnn.simulation.showers import PARTICLES, ShowerConfig, iter_showers, simulate_showers

__all__ = ["PARTICLES", "EventConfig", "ShowerConfig", "iter_events", "iter_showers",
           "simulate_events", "simulate_showers"]
