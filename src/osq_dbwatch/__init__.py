"""osq-dbwatch: detect unusual database CLI access, dumps and egress (ATT&CK AN0676)."""

__version__ = "0.1.0"
