"""A WSMan + PSRP server that knows nothing of Exchange: SOAP, runspaces, wire, HTTP(S), NTLM."""
