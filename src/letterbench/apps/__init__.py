"""Using a trained model: predict, export, serve."""
