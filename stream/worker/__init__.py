"""The faust worker: event batches in, profile updates and segment changes out."""
