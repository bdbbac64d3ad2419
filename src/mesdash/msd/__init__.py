"""Mid-section defect analysis: from defects found at a station back to what the lots share."""
