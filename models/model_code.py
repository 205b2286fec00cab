"""The code MLflow logs with every model of the store, and runs when it loads one.

MLflow runs this file with the version's configuration (``mlflow.models.ModelConfig``) and takes
the model it sets (``set_model``); see :mod:`models.registered`. It is never imported.
"""

from mlflow.models import ModelConfig
from mlflow.models import set_model

from models.registered import python_model_of_config

set_model(python_model_of_config(ModelConfig().to_dict()))  # type: ignore[no-untyped-call]
