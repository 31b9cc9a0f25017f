"""The WorkerPool operator: reconciles WorkerPools into Deployment, Service,
HPA and PodDisruptionBudget (package kept under operator/, never importable as
`operator`, which would shadow the standard library)."""
