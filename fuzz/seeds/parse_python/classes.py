import os
from .a import b as c

@dec(x)
class A(B, m.C):
    """Doc."""
    def f(self, x=g()):
        def inner():
            return h(x)
        return self.k.m(inner)

if True:
    async def top(): pass
