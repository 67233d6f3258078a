"""The Exchange client: pypsrp shell, batching, connections, errors, normalisation, wire types."""
