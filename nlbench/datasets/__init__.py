"""External datasets: located, checksummed and read (heart disease; later MNIST)."""
