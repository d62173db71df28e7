"""floe's demo Dagster code location (REQ-640), shipped in the image images/dagster-code builds."""
