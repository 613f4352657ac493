"""The recipes that rebuild the bundled assets (assets/): the sample corpus, the tokenizer, the speech tokenizer,
the teacher pairs and the text-to-token model."""
