"""The three domain services. Each folder is a thin entry point over cytoatlas.serving."""
