"""Helpers the tests share: lab copies, organisations, certificates, fake shells."""
