"""Reject history: one primary query per request (batched above the threshold), every view
from its cached dataset."""
