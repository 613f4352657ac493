"""Benchmarks and checks whose figures the docs report, each with the commit it measured."""
