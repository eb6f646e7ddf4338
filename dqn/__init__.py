"""A faithful, resumable Nature 2015 DQN (Mnih et al., doi:10.1038/nature14236).

The package is a library of small parts (environment, replay, network, optimizer, learner) and
thin command-line entry points (`dqn.train`, `dqn.evaluate`). See docs/DESIGN.md for the map.
"""

__version__ = "0.1.0"
