"""Internal helpers of floe_test."""
