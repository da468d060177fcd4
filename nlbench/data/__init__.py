"""Stage 1, data: scenarios (task-split streams), their building blocks, and the external data sources."""
