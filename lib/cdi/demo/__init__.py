"""cdi.demo"""
