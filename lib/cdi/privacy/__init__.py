"""cdi.privacy"""
