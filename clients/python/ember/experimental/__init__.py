"""Experimental APIs, as Ray's `ray.experimental`: `tqdm_ray` (progress bars
from tasks and actors, drawn by the driver)."""
