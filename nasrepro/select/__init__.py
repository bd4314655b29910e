"""Architecture selection: from a trained supernet to a discrete genotype."""
