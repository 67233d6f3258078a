"""The simulated organisation: model, store, scenarios, mail flow, EdgeSync, events, PKI."""
