"""se_app: offline speech enhancement with MPO-compressed LSTM mask estimators."""
__version__ = "0.1.0"
