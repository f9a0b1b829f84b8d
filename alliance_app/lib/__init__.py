"""Plain helpers every app may use: no app imports here, so any layer can import them."""
