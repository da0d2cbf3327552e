"""Remote commands: kinds declared as data, their lifecycle, and delivery to the car."""
