"""Tests of the Kubernetes side: the Helm chart, k8s/, the work pool's base job template, the worker."""
