"""Customer data integration: one trusted, versioned golden record per real customer."""

__version__ = "0.1.0"
