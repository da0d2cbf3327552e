"""The edge agent: carcloud inside the car."""
