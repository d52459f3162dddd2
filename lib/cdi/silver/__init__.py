"""cdi.silver"""
