"""Running models in a build: the base of every model slot's RunInference handler (handler.py) and the inference
cache of what the models already made (cache.py). The slots themselves sit with their methods: the text-to-token
models in transforms/speech/speech_handlers.py, the embedder in transforms/related/embed.py."""
