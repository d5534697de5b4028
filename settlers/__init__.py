"""The Settlers workload: the economy model and the producer services."""

from settlers.economy import DEFAULT_ECONOMY, Economy, EconomyError, Item, load_economy

__all__ = ["DEFAULT_ECONOMY", "Economy", "EconomyError", "Item", "load_economy"]
__version__ = "0.1.0"
