"""The headless core: engines, prompt rendering, history store, models. Never imports textual or rich."""
