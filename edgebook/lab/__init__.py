"""The lab: a simulated Exchange organisation served over real WSMan/PSRP and real TLS."""
