"""segstream: real-time behavioral customer segmentation on Kafka, faust and Redis."""

__version__ = "0.1.0"
