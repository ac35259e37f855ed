"""Clustering: masking (what varies) and the online template miner (what stays)."""
