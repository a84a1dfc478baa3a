"""Scene: dataset reading, cameras, the Gaussian model, densification and motion networks."""
