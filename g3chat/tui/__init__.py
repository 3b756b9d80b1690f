"""The Textual interface (the app itself lands with issue 4; attachment widgets live in widgets/)."""
