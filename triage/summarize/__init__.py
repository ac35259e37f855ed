"""Summaries through llama.cpp: the model writes prose for a card, never a fact."""
