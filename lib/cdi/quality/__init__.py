"""cdi.quality"""
