"""kubectl-waypoint: checks that Istio ambient waypoints came through a control-plane upgrade intact."""

__version__ = "0.1.0"
