"""Task-split data streams, one module each, registered by name with `@register_scenario`."""
