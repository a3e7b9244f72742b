"""Budgets: the model and its storage, the evaluator that sends alerts, the API and its client."""
