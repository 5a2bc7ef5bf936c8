"""Read and match: stream the batch files, index the requests by id, pair results with them."""
