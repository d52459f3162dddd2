"""cdi.lake"""
