"""The interactive chat UI (Textual). Imported only when ``g3chat`` opens it."""
