"""Interleaved speech (GLM-4-Voice's synthetic interleaved data): which words are spoken, the text-to-token
model slot, their conversion and weaving back into the documents."""
