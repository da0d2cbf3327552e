"""The driver's day in the car: leave-by, cards to the car, pre-conditioning, the head unit."""
