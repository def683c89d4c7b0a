"""The controller manager: ReplicaSets, Deployments and the garbage collector.

Each controller is a reconciler on a ``WorkQueue`` over one shared
informer (``cache.py``); it reads the cache and writes through the
apiserver like any client, so the controller manager holds no state that a
restart could lose.
"""
