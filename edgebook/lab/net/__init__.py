"""The Edges' TLS listeners: SMTP STARTTLS and LDAPS."""
