"""A real local Kubernetes cluster for development and tests, without Docker.

Real kube-apiserver, kube-controller-manager, kube-scheduler and etcd built from their Go
modules, kwok standing in for the kubelets, and Prometheus from Debian's package. Started
by ``kwokctl create cluster --runtime=binary`` with every binary taken from the local
cache, so nothing is downloaded at ``up`` time.
"""

from ftmoe.cluster.errors import ClusterError

__all__ = ["ClusterError"]
