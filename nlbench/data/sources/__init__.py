"""Where data comes from: bundled (digits) or external (heart disease, MNIST), located, checksummed, cached."""
