"""Model training, evaluation, MLflow logging, and model loading for Predict."""
