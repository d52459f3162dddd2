"""cdi.gold"""
