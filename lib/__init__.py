"""Library behind the book: data, models, training, attacks, geometry and reporting."""

__version__ = "0.1.0"
