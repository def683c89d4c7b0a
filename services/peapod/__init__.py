"""peapod: Kubernetes-style Pods for small fleets of real machines, over NATS JetStream."""

__version__ = "0.1.0"
