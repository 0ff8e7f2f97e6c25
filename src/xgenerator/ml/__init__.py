"""Pure XGBoost code: data to model input, training with hooks, metrics, model files, predict.

Nothing here knows about Celery, the database or the API; only `xgenerator.errors` is shared.
"""
