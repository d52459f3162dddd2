"""cdi.bronze"""
