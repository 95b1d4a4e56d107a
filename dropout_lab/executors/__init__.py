"""Executors run jobs (one trial each) and yield their outcomes; the runner stores them."""
