"""Tests of the container image: the Dockerfile linted, the image built with a real engine and run."""
